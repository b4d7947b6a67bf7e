//! Device summaries from real user agent strings and client hints.

use console_sessions::device::{
    Brand, ClientHints, DeviceCategory, DeviceSummary, ACCEPT_CH, MAX_USER_AGENT_LEN,
    UNKNOWN_DEVICE,
};
use DeviceCategory::{Appliance, Crawler, Desktop, MobilePhone, Smartphone, Unknown};

/// (user agent, expected summary, expected category where checked).
const USER_AGENTS: &[(&str, &str, Option<DeviceCategory>)] = &[
    // Windows
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "Chrome 131 on Windows 10",
        Some(Desktop),
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Firefox 128 on Windows 10",
        Some(Desktop),
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Firefox 133 on Windows 10",
        None,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
        "Edge 131 on Windows 10",
        Some(Desktop),
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
        "Opera 115 on Windows 10",
        None,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Vivaldi/7.0.3495.18",
        "Vivaldi 7 on Windows 10",
        None,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 YaBrowser/24.12.0.0 Safari/537.36",
        "Yandex Browser 24 on Windows 10",
        None,
    ),
    (
        "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36",
        "Chrome 109 on Windows 7",
        Some(Desktop),
    ),
    (
        "Mozilla/5.0 (Windows NT 6.3; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36",
        "Chrome 109 on Windows 8.1",
        None,
    ),
    (
        "Mozilla/5.0 (Windows NT 6.2; WOW64; rv:52.0) Gecko/20100101 Firefox/52.0",
        "Firefox 52 on Windows 8",
        None,
    ),
    (
        "Mozilla/5.0 (Windows NT 5.1; rv:52.0) Gecko/20100101 Firefox/52.0",
        "Firefox 52 on Windows XP",
        None,
    ),
    (
        "Mozilla/5.0 (Windows NT 6.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/49.0.2623.112 Safari/537.36",
        "Chrome 49 on Windows Vista",
        None,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Safari/537.36 Edge/15.15063",
        "Edge 15 on Windows 10",
        None,
    ),
    (
        "Opera/9.80 (Windows NT 6.1; U; en) Presto/2.10.289 Version/12.00",
        "Opera 12 on Windows 7",
        Some(Desktop),
    ),
    // Internet Explorer 6-11
    (
        "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)",
        "Internet Explorer 6 on Windows XP",
        Some(Desktop),
    ),
    (
        "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 5.1)",
        "Internet Explorer 7 on Windows XP",
        None,
    ),
    (
        "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0)",
        "Internet Explorer 8 on Windows 7",
        None,
    ),
    (
        "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)",
        "Internet Explorer 9 on Windows 7",
        None,
    ),
    (
        "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; Trident/6.0)",
        "Internet Explorer 10 on Windows 8",
        None,
    ),
    (
        "Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko",
        "Internet Explorer 11 on Windows 7",
        None,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
        "Internet Explorer 11 on Windows 10",
        Some(Desktop),
    ),
    // macOS
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "Chrome 131 on macOS",
        Some(Desktop),
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Safari/605.1.15",
        "Safari 18 on macOS",
        Some(Desktop),
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
        "Safari 17 on macOS",
        None,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Firefox 133 on macOS",
        None,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
        "Edge 131 on macOS",
        None,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
        "Opera 115 on macOS",
        None,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Vivaldi/7.0.3495.18",
        "Vivaldi 7 on macOS",
        None,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/49.0.2623.112 Safari/537.36",
        "Chrome 49 on macOS",
        None,
    ),
    // Linux, ChromeOS, BSD
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "Chrome 131 on Linux",
        Some(Desktop),
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Firefox 133 on Linux",
        None,
    ),
    (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Firefox 133 on Linux",
        None,
    ),
    (
        "Mozilla/5.0 (X11; Fedora; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Firefox 128 on Linux",
        None,
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
        "Edge 131 on Linux",
        None,
    ),
    (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "Chrome 131 on ChromeOS",
        Some(Desktop),
    ),
    (
        "Mozilla/5.0 (X11; FreeBSD amd64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Firefox 128 on BSD",
        None,
    ),
    // Android
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
        "Chrome 131 on Android 10",
        Some(Smartphone),
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.104 Mobile Safari/537.36",
        "Chrome 131 on Android 14",
        Some(Smartphone),
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36",
        "Chrome 130 on Android 13",
        None,
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "Chrome 131 on Android 10",
        Some(Smartphone),
    ),
    (
        "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
        "Firefox 133 on Android 14",
        Some(Smartphone),
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        "Samsung Internet 26 on Android 14",
        Some(Smartphone),
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/27.0 Chrome/125.0.0.0 Mobile Safari/537.36",
        "Samsung Internet 27 on Android 10",
        None,
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.2903.87",
        "Edge 131 on Android 10",
        None,
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 OPR/86.0.0.0",
        "Opera 86 on Android 10",
        None,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240805.005; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.39 Mobile Safari/537.36",
        "WebView on Android 14",
        Some(Smartphone),
    ),
    (
        "Mozilla/5.0 (Linux; U; Android 4.4.2; en-us; SM-T530NU Build/KOT49H) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 Safari/534.30",
        "Android Browser on Android 4",
        None,
    ),
    // iOS and iPadOS
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Mobile/15E148 Safari/604.1",
        "Safari 18 on iPhone",
        Some(Smartphone),
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
        "Safari 17 on iPhone",
        None,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        "Chrome 131 on iPhone",
        Some(Smartphone),
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15",
        "Firefox 133 on iPhone",
        None,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 EdgiOS/131.2903.86 Mobile/15E148 Safari/605.1.15",
        "Edge 131 on iPhone",
        None,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
        "WebView on iPhone",
        Some(Smartphone),
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.7 Mobile/15E148 Safari/604.1",
        "Safari 17 on iPad",
        Some(Smartphone),
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        "Chrome 131 on iPad",
        None,
    ),
    (
        "Mozilla/5.0 (iPod touch; CPU iPhone OS 12_5_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1.2 Mobile/15E148 Safari/604.1",
        "Safari 12 on iPod",
        None,
    ),
    // Other phones and appliances
    (
        "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.15063",
        "Edge 15 on Windows Phone 10",
        Some(Smartphone),
    ),
    ("DoCoMo/2.0 P903i(c100;TB;W24H12)", "docomo", Some(MobilePhone)),
    (
        "KDDI-SA31 UP.Browser/6.2.0.7.3.129 (GUI) MMP/2.0",
        "au by KDDI",
        Some(MobilePhone),
    ),
    (
        "Mozilla/5.0 (PlayStation 4 11.50) AppleWebKit/605.1.15 (KHTML, like Gecko)",
        "PlayStation 4",
        Some(Appliance),
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edge/44.18363.8131",
        "Xbox One",
        Some(Appliance),
    ),
    // Crawlers
    (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Googlebot (crawler)",
        Some(Crawler),
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; +http://www.google.com/bot.html) Chrome/131.0.6778.85 Safari/537.36",
        "Googlebot (crawler)",
        Some(Crawler),
    ),
    (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.85 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Googlebot (crawler)",
        Some(Crawler),
    ),
    (
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Bingbot (crawler)",
        Some(Crawler),
    ),
    (
        "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
        "Baiduspider (crawler)",
        Some(Crawler),
    ),
    (
        "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
        "YandexBot (crawler)",
        Some(Crawler),
    ),
    (
        "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
        "Yahoo! Slurp (crawler)",
        None,
    ),
    (
        "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
        "DuckDuckBot (crawler)",
        Some(Crawler),
    ),
    (
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Facebook (crawler)",
        None,
    ),
    ("Twitterbot/1.0", "Twitterbot (crawler)", None),
    (
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "AhrefsBot (crawler)",
        None,
    ),
    // Tools
    ("curl/8.5.0", "curl 8", Some(Unknown)),
    ("Wget/1.21.4", "Wget 1", Some(Unknown)),
    ("Java/17.0.2", "Java 17", Some(Unknown)),
    // Nothing useful
    ("", UNKNOWN_DEVICE, Some(Unknown)),
    ("   ", UNKNOWN_DEVICE, Some(Unknown)),
    ("-", UNKNOWN_DEVICE, Some(Unknown)),
    ("hello world", UNKNOWN_DEVICE, Some(Unknown)),
    ("<script>alert(1)</script>", UNKNOWN_DEVICE, Some(Unknown)),
    ("Mozilla/5.0", UNKNOWN_DEVICE, Some(Unknown)),
    ("python-requests/2.32.3", UNKNOWN_DEVICE, Some(Unknown)),
    ("\u{0}\u{1}\u{7f}ÿ☃ \\ \" ;;; ((((", UNKNOWN_DEVICE, Some(Unknown)),
];

#[test]
fn real_user_agents_have_the_expected_summaries_and_categories() {
    assert!(USER_AGENTS.len() >= 60, "{} user agents", USER_AGENTS.len());
    let mut failures = Vec::new();
    for (user_agent, summary, category) in USER_AGENTS {
        let device = DeviceSummary::from_user_agent(user_agent);
        if device.summary != *summary || category.is_some_and(|c| c != device.category) {
            failures.push(format!(
                "{user_agent:?}\n  expected {summary:?} {category:?}\n  got      {:?} {:?}",
                device.summary, device.category
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn firefox_on_windows_has_structured_fields() {
    let device = DeviceSummary::from_user_agent(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
    );
    assert_eq!(
        device,
        DeviceSummary {
            browser: Some("Firefox".into()),
            browser_version: Some("128.0".into()),
            os: Some("Windows 10".into()),
            os_version: None,
            category: Desktop,
            summary: "Firefox 128 on Windows 10".into(),
        }
    );
}

#[test]
fn iphone_keeps_its_ios_version_out_of_the_summary() {
    let device = DeviceSummary::from_user_agent(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    );
    assert_eq!(device.os.as_deref(), Some("iPhone"));
    assert_eq!(device.os_version.as_deref(), Some("17.6.1"));
    assert_eq!(device.browser.as_deref(), Some("Safari"));
    assert_eq!(device.browser_version.as_deref(), Some("17.6"));
}

#[test]
fn missing_user_agent_without_hints_is_unknown_device() {
    let device = DeviceSummary::from_request(None, &ClientHints::default());
    assert_eq!(device, DeviceSummary::unknown());
    assert!(device.is_unknown());
    assert_eq!(device.to_string(), UNKNOWN_DEVICE);
}

#[test]
fn ten_kilobyte_user_agent_is_unknown_device_and_quick() {
    let padded = format!(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) {} Chrome/131.0.0.0 Safari/537.36",
        "x".repeat(10 * 1024)
    );
    let garbage = "\u{1F600}".repeat(2560);
    for user_agent in [padded.as_str(), garbage.as_str()] {
        assert!(user_agent.len() > MAX_USER_AGENT_LEN);
        let started = std::time::Instant::now();
        let device = DeviceSummary::from_user_agent(user_agent);
        assert_eq!(device.summary, UNKNOWN_DEVICE);
        assert_eq!(device.category, Unknown);
        assert!(started.elapsed() < std::time::Duration::from_millis(50));
    }
}

#[test]
fn every_prefix_of_every_user_agent_parses_without_panicking() {
    for (user_agent, _, _) in USER_AGENTS {
        for (index, _) in user_agent.char_indices() {
            let device = DeviceSummary::from_user_agent(&user_agent[..index]);
            assert!(!device.summary.is_empty());
        }
    }
}

#[test]
fn device_summary_round_trips_through_json() {
    let device = DeviceSummary::from_user_agent(
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.104 Mobile Safari/537.36",
    );
    let json = serde_json::to_value(&device).expect("serialise");
    assert_eq!(json["category"], "smartphone");
    assert_eq!(json["summary"], "Chrome 131 on Android 14");
    let back: DeviceSummary = serde_json::from_value(json).expect("deserialise");
    assert_eq!(back, device);
}

#[test]
fn category_keys_are_stable_lower_case_words() {
    let keys: Vec<_> = DeviceCategory::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        keys,
        [
            "desktop",
            "smartphone",
            "mobilephone",
            "appliance",
            "crawler",
            "unknown"
        ]
    );
    assert_eq!(Smartphone.to_string(), "Smartphone");
    assert_eq!(DeviceCategory::from_key("crawler"), Some(Crawler));
}

// Client hints.

const FROZEN_WINDOWS_CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const FROZEN_MAC_CHROME: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const REDUCED_ANDROID_CHROME: &str = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";
const CHROME_BRANDS: &str = r#""Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24""#;

fn hints(ua: &str, platform: &str, version: &str, mobile: &str) -> ClientHints {
    ClientHints::from_header_values(Some(ua), Some(platform), Some(version), Some(mobile))
}

fn summary(user_agent: Option<&str>, hints: &ClientHints) -> String {
    DeviceSummary::from_request(user_agent, hints).summary
}

#[test]
fn header_values_are_parsed_from_structured_fields() {
    let parsed = hints(CHROME_BRANDS, "\"Windows\"", "\"15.0.0\"", "?0");
    assert_eq!(
        parsed,
        ClientHints {
            ua: Some(CHROME_BRANDS.into()),
            platform: Some("Windows".into()),
            platform_version: Some("15.0.0".into()),
            mobile: Some(false),
        }
    );
    assert_eq!(
        parsed.brands(),
        vec![
            Brand {
                name: "Google Chrome".into(),
                version: Some("131".into())
            },
            Brand {
                name: "Chromium".into(),
                version: Some("131".into())
            },
            Brand {
                name: "Not_A Brand".into(),
                version: Some("24".into())
            },
        ]
    );
    assert_eq!(
        hints(CHROME_BRANDS, "\"Android\"", "\"14.0.0\"", "?1").mobile,
        Some(true)
    );
}

#[test]
fn client_hints_round_trip_through_json() {
    let parsed = hints(CHROME_BRANDS, "\"macOS\"", "\"14.5.0\"", "?0");
    let json = serde_json::to_string(&parsed).expect("serialise");
    let back: ClientHints = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, parsed);
    let empty: ClientHints = serde_json::from_str("{}").expect("deserialise");
    assert!(empty.is_empty());
}

#[test]
fn accept_ch_asks_for_every_hint_used() {
    for hint in [
        "Sec-CH-UA",
        "Sec-CH-UA-Mobile",
        "Sec-CH-UA-Platform",
        "Sec-CH-UA-Platform-Version",
    ] {
        assert!(ACCEPT_CH.split(", ").any(|h| h == hint), "{hint}");
    }
}

#[test]
fn frozen_windows_user_agent_uses_platform_version_hint() {
    let windows_11 = hints(CHROME_BRANDS, "\"Windows\"", "\"15.0.0\"", "?0");
    assert_eq!(
        summary(Some(FROZEN_WINDOWS_CHROME), &windows_11),
        "Chrome 131 on Windows 11"
    );
    let windows_11_first = hints(CHROME_BRANDS, "\"Windows\"", "\"13.0.0\"", "?0");
    assert_eq!(
        summary(Some(FROZEN_WINDOWS_CHROME), &windows_11_first),
        "Chrome 131 on Windows 11"
    );
    let windows_10 = hints(CHROME_BRANDS, "\"Windows\"", "\"10.0.0\"", "?0");
    assert_eq!(
        summary(Some(FROZEN_WINDOWS_CHROME), &windows_10),
        "Chrome 131 on Windows 10"
    );
    let windows_10_early = hints(CHROME_BRANDS, "\"Windows\"", "\"1.0.0\"", "?0");
    assert_eq!(
        summary(Some(FROZEN_WINDOWS_CHROME), &windows_10_early),
        "Chrome 131 on Windows 10"
    );
    let device = DeviceSummary::from_request(Some(FROZEN_WINDOWS_CHROME), &windows_11);
    assert_eq!(device.os.as_deref(), Some("Windows 11"));
    assert_eq!(device.os_version, None);
    assert_eq!(device.category, Desktop);
}

#[test]
fn windows_without_a_platform_version_stays_windows_10() {
    let no_version =
        ClientHints::from_header_values(Some(CHROME_BRANDS), Some("\"Windows\""), None, Some("?0"));
    assert_eq!(
        summary(Some(FROZEN_WINDOWS_CHROME), &no_version),
        "Chrome 131 on Windows 10"
    );
}

#[test]
fn frozen_mac_user_agent_uses_the_macos_version_hint() {
    let sonoma = hints(CHROME_BRANDS, "\"macOS\"", "\"14.5.0\"", "?0");
    let device = DeviceSummary::from_request(Some(FROZEN_MAC_CHROME), &sonoma);
    assert_eq!(device.summary, "Chrome 131 on macOS 14");
    assert_eq!(device.os_version.as_deref(), Some("14.5.0"));
    let catalina = hints(CHROME_BRANDS, "\"macOS\"", "\"10.15.7\"", "?0");
    assert_eq!(
        summary(Some(FROZEN_MAC_CHROME), &catalina),
        "Chrome 131 on macOS 10.15"
    );
}

#[test]
fn mac_user_agent_alone_shows_no_macos_version() {
    let device = DeviceSummary::from_user_agent(FROZEN_MAC_CHROME);
    assert_eq!(device.summary, "Chrome 131 on macOS");
    assert_eq!(device.os_version.as_deref(), Some("10.15.7"));
}

#[test]
fn reduced_android_user_agent_uses_the_android_version_hint() {
    let android_14 = hints(CHROME_BRANDS, "\"Android\"", "\"14.0.0\"", "?1");
    assert_eq!(
        summary(Some(REDUCED_ANDROID_CHROME), &android_14),
        "Chrome 131 on Android 14"
    );
}

#[test]
fn brave_is_named_from_its_brand_hint() {
    let brave = hints(
        r#""Brave";v="131", "Chromium";v="131", "Not_A Brand";v="24""#,
        "\"Windows\"",
        "\"15.0.0\"",
        "?0",
    );
    let device = DeviceSummary::from_request(Some(FROZEN_WINDOWS_CHROME), &brave);
    assert_eq!(device.summary, "Brave 131 on Windows 11");
    assert_eq!(device.browser.as_deref(), Some("Brave"));
    assert_eq!(device.browser_version.as_deref(), Some("131"));
}

#[test]
fn brand_selection_prefers_specific_brands_over_chromium() {
    let cases = [
        (
            r#""Chromium";v="131", "Google Chrome";v="131", "Not_A Brand";v="24""#,
            "Chrome",
        ),
        (
            r#""Microsoft Edge";v="131", "Chromium";v="131", "Not_A Brand";v="24""#,
            "Edge",
        ),
        (
            r#""Chromium";v="130", "Opera";v="115", "Not?A_Brand";v="99""#,
            "Opera",
        ),
        (
            r#""Not)A;Brand";v="99", "Brave";v="131", "Chromium";v="131""#,
            "Brave",
        ),
        (r#""Chromium";v="131", "Not_A Brand";v="24""#, "Chromium"),
        (
            r#""Not/A)Brand";v="8", "Chromium";v="126", "Android WebView";v="126""#,
            "WebView",
        ),
    ];
    for (header, expected) in cases {
        let parsed = ClientHints::from_header_values(Some(header), None, None, None);
        let brand = parsed.brand().expect(header);
        assert_eq!(brand.display_name(), expected, "{header}");
    }
}

#[test]
fn grease_brands_are_never_chosen() {
    for grease in [
        "Not_A Brand",
        "Not A(Brand",
        "Not/A)Brand",
        "Not)A;Brand",
        "Not?A_Brand",
        "Not.A/Brand",
    ] {
        let header = format!(r#""{grease}";v="99""#);
        let parsed = ClientHints::from_header_values(Some(&header), None, None, None);
        assert_eq!(parsed.brands().len(), 1, "{header}");
        assert_eq!(parsed.brand(), None, "{header}");
    }
}

#[test]
fn edge_user_agent_and_edge_brand_keep_the_full_version() {
    let edge_ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86";
    let edge = hints(
        r#""Microsoft Edge";v="131", "Chromium";v="131", "Not_A Brand";v="24""#,
        "\"Windows\"",
        "\"19.0.0\"",
        "?0",
    );
    let device = DeviceSummary::from_request(Some(edge_ua), &edge);
    assert_eq!(device.summary, "Edge 131 on Windows 11");
    assert_eq!(device.browser_version.as_deref(), Some("131.0.2903.86"));
}

#[test]
fn hints_alone_describe_a_request_without_user_agent() {
    let windows = hints(CHROME_BRANDS, "\"Windows\"", "\"15.0.0\"", "?0");
    let device = DeviceSummary::from_request(None, &windows);
    assert_eq!(device.summary, "Chrome 131 on Windows 11");
    assert_eq!(device.category, Desktop);

    let android = hints(CHROME_BRANDS, "\"Android\"", "\"14.0.0\"", "?1");
    let device = DeviceSummary::from_request(Some(""), &android);
    assert_eq!(device.summary, "Chrome 131 on Android 14");
    assert_eq!(device.category, Smartphone);
}

#[test]
fn hints_never_change_a_non_chromium_browser_or_its_platform() {
    let firefox =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let odd = hints(CHROME_BRANDS, "\"macOS\"", "\"14.5.0\"", "?1");
    let device = DeviceSummary::from_request(Some(firefox), &odd);
    assert_eq!(device.summary, "Firefox 128 on Windows 10");
    assert_eq!(device.category, Desktop);
}

#[test]
fn crawlers_ignore_hints() {
    let googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    let windows = hints(CHROME_BRANDS, "\"Windows\"", "\"15.0.0\"", "?0");
    assert_eq!(summary(Some(googlebot), &windows), "Googlebot (crawler)");
}

#[test]
fn malformed_hints_are_ignored() {
    let malformed = [
        ClientHints::from_header_values(
            Some("Google Chrome;v=131"),
            Some("Windows"),
            Some("fifteen"),
            Some("yes"),
        ),
        ClientHints::from_header_values(
            Some(r#""Google Chrome";v="131","#),
            Some("\"Windows"),
            Some("\"15.0.0\" trailing"),
            Some("?2"),
        ),
        ClientHints::from_header_values(
            Some(r#""Google Chrome";v="131" "Chromium""#),
            Some("\"\""),
            Some("\"\""),
            Some(""),
        ),
        ClientHints::from_header_values(
            Some(&format!("\"{}\"", "A".repeat(10_000))),
            Some(&format!("\"{}\"", "W".repeat(10_000))),
            Some(&format!("\"{}\"", "1".repeat(10_000))),
            Some("?1?1"),
        ),
    ];
    for hints in malformed {
        assert!(hints.is_empty(), "{hints:?}");
        assert_eq!(
            summary(Some(FROZEN_WINDOWS_CHROME), &hints),
            "Chrome 131 on Windows 10"
        );
        assert_eq!(summary(None, &hints), UNKNOWN_DEVICE);
    }
}

#[test]
fn tampered_stored_hints_are_revalidated() {
    let tampered = ClientHints {
        ua: Some("not a brand list".into()),
        platform: Some("Windows".into()),
        platform_version: Some("15.0.0; DROP TABLE".into()),
        mobile: None,
    };
    assert_eq!(
        summary(Some(FROZEN_WINDOWS_CHROME), &tampered),
        "Chrome 131 on Windows 10"
    );
}

#[test]
fn hints_are_read_from_request_headers() {
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("sec-ch-ua", CHROME_BRANDS.parse().expect("header"));
    headers.insert("sec-ch-ua-platform", "\"Windows\"".parse().expect("header"));
    headers.insert(
        "sec-ch-ua-platform-version",
        "\"15.0.0\"".parse().expect("header"),
    );
    headers.insert("sec-ch-ua-mobile", "?0".parse().expect("header"));
    let parsed = ClientHints::from_headers(&headers);
    assert_eq!(
        parsed,
        hints(CHROME_BRANDS, "\"Windows\"", "\"15.0.0\"", "?0")
    );
}
