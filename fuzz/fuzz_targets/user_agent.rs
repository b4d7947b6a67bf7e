//! A device from its `User-Agent` and User-Agent Client Hints (structured-field syntax), as every
//! request is summarised. The one-line summary is shown in pages, the admin and the subject of a
//! new sign-in alert, so besides never panicking it must stay one short, printable line.

#![no_main]

use arbitrary::Arbitrary;
use console_sessions::device::{ClientHints, DeviceSummary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    user_agent: Option<String>,
    sec_ch_ua: Option<String>,
    platform: Option<String>,
    platform_version: Option<String>,
    mobile: Option<String>,
}

fuzz_target!(|input: Input| {
    let hints = ClientHints::from_header_values(
        input.sec_ch_ua.as_deref(),
        input.platform.as_deref(),
        input.platform_version.as_deref(),
        input.mobile.as_deref(),
    );
    // Hints are stored as JSON with the session and read back on every load.
    let json = serde_json::to_string(&hints).expect("hints serialise");
    let back: ClientHints = serde_json::from_str(&json).expect("stored hints read back");
    assert_eq!(back, hints);
    let _ = hints.brands();
    let _ = hints.brand();

    let device = DeviceSummary::from_request(input.user_agent.as_deref(), &hints);
    let summary = &device.summary;
    assert!(!summary.is_empty());
    // No control character, and no white space but the plain space (a line or paragraph
    // separator would break the line too).
    let printable = |text: &str| {
        !text
            .chars()
            .any(|c| c.is_control() || (c.is_whitespace() && c != ' '))
    };
    assert!(printable(summary), "{summary:?}");
    assert!(
        summary.chars().count() <= 200,
        "{} characters: {summary:?}",
        summary.chars().count()
    );
    for part in [
        &device.browser,
        &device.browser_version,
        &device.os,
        &device.os_version,
    ] {
        if let Some(part) = part {
            assert!(printable(part), "{part:?}");
        }
    }
    let json = serde_json::to_string(&device).expect("summary serialises");
    let back: DeviceSummary = serde_json::from_str(&json).expect("summary reads back");
    assert_eq!(back, device);
    // The same request is summarised the same way every time.
    assert_eq!(
        DeviceSummary::from_request(input.user_agent.as_deref(), &hints),
        device
    );
});
