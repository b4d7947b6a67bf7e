//! What device a session is on: browser, operating system and a one-line summary such as
//! "Firefox 128 on Windows 10", from the `User-Agent` header (parsed by woothee) refined by
//! User-Agent Client Hints where Chromium has frozen the user agent string.
//!
//! Nothing here fails: a missing, empty, garbage or oversized user agent gives
//! [`UNKNOWN_DEVICE`], and malformed hints are ignored.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The summary given when nothing useful can be said about the device.
pub const UNKNOWN_DEVICE: &str = "Unknown device";

/// User agents longer than this many bytes are not parsed and give [`UNKNOWN_DEVICE`]. Real ones
/// stay well under 512 bytes; longer ones are abuse, and parsing them costs milliseconds.
pub const MAX_USER_AGENT_LEN: usize = 1024;

/// Value for an `Accept-CH` response header: the client hints [`ClientHints`] understands. Chromium
/// sends the low-entropy ones anyway; `Sec-CH-UA-Platform-Version` is sent only when asked for.
pub const ACCEPT_CH: &str =
    "Sec-CH-UA, Sec-CH-UA-Mobile, Sec-CH-UA-Platform, Sec-CH-UA-Platform-Version";

/// Value for a `Critical-CH` response header: asks Chromium to retry the very first request with the
/// platform version, so even a session's first request can tell Windows 11 from Windows 10.
pub const CRITICAL_CH: &str = "Sec-CH-UA-Platform-Version";

/// Request header carrying the brand list, e.g. `"Chromium";v="131", "Google Chrome";v="131"`.
pub const SEC_CH_UA: &str = "sec-ch-ua";
/// Request header carrying the platform, e.g. `"Windows"`.
pub const SEC_CH_UA_PLATFORM: &str = "sec-ch-ua-platform";
/// Request header carrying the platform version, e.g. `"15.0.0"`.
pub const SEC_CH_UA_PLATFORM_VERSION: &str = "sec-ch-ua-platform-version";
/// Request header saying whether the browser wants a mobile experience: `?1` or `?0`.
pub const SEC_CH_UA_MOBILE: &str = "sec-ch-ua-mobile";

/// Longest hint header value kept; real ones are under 200 bytes.
const MAX_HINT_LEN: usize = 512;
/// Longest brand or product name kept, so a hostile header cannot bloat a stored summary.
const MAX_NAME_LEN: usize = 48;
/// Longest version string kept ("131.0.6778.104" is 14).
const MAX_VERSION_LEN: usize = 32;
/// More brands than this in `Sec-CH-UA` is not a real browser.
const MAX_BRANDS: usize = 16;

/// The broad kind of device, from woothee's categories.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceCategory {
    /// A desktop or laptop computer (woothee's "pc").
    Desktop,
    /// A smartphone or tablet.
    Smartphone,
    /// A feature phone (woothee's "mobilephone").
    MobilePhone,
    /// A games console, TV or other appliance.
    Appliance,
    /// A search engine or other bot.
    Crawler,
    /// Anything else, including HTTP libraries and unparseable user agents.
    #[default]
    Unknown,
}

impl DeviceCategory {
    /// Every category, in declaration order.
    pub const ALL: [DeviceCategory; 6] = [
        DeviceCategory::Desktop,
        DeviceCategory::Smartphone,
        DeviceCategory::MobilePhone,
        DeviceCategory::Appliance,
        DeviceCategory::Crawler,
        DeviceCategory::Unknown,
    ];

    /// A stable lower-case key for storage and CSS classes: "desktop", "smartphone",
    /// "mobilephone", "appliance", "crawler" or "unknown" (the same as the serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceCategory::Desktop => "desktop",
            DeviceCategory::Smartphone => "smartphone",
            DeviceCategory::MobilePhone => "mobilephone",
            DeviceCategory::Appliance => "appliance",
            DeviceCategory::Crawler => "crawler",
            DeviceCategory::Unknown => "unknown",
        }
    }

    /// The category whose [`as_str`](Self::as_str) key is `key`, if any.
    pub fn from_key(key: &str) -> Option<DeviceCategory> {
        DeviceCategory::ALL.into_iter().find(|c| c.as_str() == key)
    }

    /// Maps a woothee category string.
    fn from_woothee(category: &str) -> DeviceCategory {
        match category {
            "pc" => DeviceCategory::Desktop,
            "smartphone" => DeviceCategory::Smartphone,
            "mobilephone" => DeviceCategory::MobilePhone,
            "appliance" => DeviceCategory::Appliance,
            "crawler" => DeviceCategory::Crawler,
            _ => DeviceCategory::Unknown,
        }
    }
}

/// Human form: "Desktop", "Smartphone", "Mobile phone", "Appliance", "Crawler", "Unknown".
impl fmt::Display for DeviceCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceCategory::Desktop => "Desktop",
            DeviceCategory::Smartphone => "Smartphone",
            DeviceCategory::MobilePhone => "Mobile phone",
            DeviceCategory::Appliance => "Appliance",
            DeviceCategory::Crawler => "Crawler",
            DeviceCategory::Unknown => "Unknown",
        })
    }
}

/// One entry of the `Sec-CH-UA` brand list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Brand {
    /// The brand as sent, e.g. "Google Chrome".
    pub name: String,
    /// Its `v` parameter if it is a version number, e.g. "131".
    pub version: Option<String>,
}

impl Brand {
    /// Whether this is one of the made-up "Not A Brand" entries Chromium adds so servers do not
    /// hard-code the list ("Not_A Brand", "Not/A)Brand", "Not)A;Brand", ...).
    pub fn is_grease(&self) -> bool {
        // Chromium's GREASE names always start with "Not" and end with "Brand"; only the
        // punctuation between varies.
        let name = self.name.as_str();
        let starts = name.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("not"));
        let ends = name
            .len()
            .checked_sub(5)
            .and_then(|start| name.get(start..))
            .is_some_and(|s| s.eq_ignore_ascii_case("brand"));
        starts && ends
    }

    /// The browser name as shown in summaries: "Chrome" for "Google Chrome", "Edge" for
    /// "Microsoft Edge", and so on.
    pub fn display_name(&self) -> &str {
        match self.name.as_str() {
            "Google Chrome" => "Chrome",
            "Microsoft Edge" => "Edge",
            "Yandex" | "YaBrowser" => "Yandex Browser",
            "Android WebView" => "WebView",
            other => other,
        }
    }

    /// Lower ranks win when choosing the brand that names the browser.
    fn rank(&self) -> u8 {
        match self.name.as_str() {
            "Microsoft Edge" | "Opera" | "Opera GX" | "Brave" | "Vivaldi" | "Yandex"
            | "YaBrowser" | "Samsung Internet" => 0,
            "Google Chrome" => 1,
            "Chromium" => 3,
            _ => 2,
        }
    }
}

/// User-Agent Client Hints as received (normalised and validated), storable as JSON next to a
/// session so its device can be re-derived later.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientHints {
    /// The raw `Sec-CH-UA` brand list, kept only if it parses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ua: Option<String>,
    /// `Sec-CH-UA-Platform` unquoted, e.g. "Windows", "macOS", "Android".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// `Sec-CH-UA-Platform-Version` unquoted, e.g. "15.0.0".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    /// `Sec-CH-UA-Mobile`: `?1` is `true`, `?0` is `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<bool>,
}

impl ClientHints {
    /// Parses the raw values of the `Sec-CH-UA`, `Sec-CH-UA-Platform`, `Sec-CH-UA-Platform-Version`
    /// and `Sec-CH-UA-Mobile` headers (structured-field syntax). A missing or malformed value
    /// becomes `None`; nothing fails.
    pub fn from_header_values(
        sec_ch_ua: Option<&str>,
        platform: Option<&str>,
        platform_version: Option<&str>,
        mobile: Option<&str>,
    ) -> ClientHints {
        let ua = sec_ch_ua
            .map(str::trim)
            .filter(|raw| parse_brand_list(raw).is_some())
            .map(str::to_owned);
        let platform = platform
            .and_then(parse_single_sf_string)
            .filter(|p| !p.is_empty() && p.len() <= MAX_NAME_LEN);
        let platform_version = platform_version
            .and_then(parse_single_sf_string)
            .filter(|v| is_version(v));
        let mobile = mobile.and_then(|raw| match raw.trim() {
            "?1" => Some(true),
            "?0" => Some(false),
            _ => None,
        });
        ClientHints {
            ua,
            platform,
            platform_version,
            mobile,
        }
    }

    /// Reads the four hint headers from a request's headers (the first value of each, as
    /// `HeaderMap::get` gives); values that are not visible ASCII are treated as missing.
    pub fn from_headers(headers: &axum::http::HeaderMap) -> ClientHints {
        use axum::http::HeaderName;
        const NAMES: [HeaderName; 4] = [
            HeaderName::from_static(SEC_CH_UA),
            HeaderName::from_static(SEC_CH_UA_PLATFORM),
            HeaderName::from_static(SEC_CH_UA_PLATFORM_VERSION),
            HeaderName::from_static(SEC_CH_UA_MOBILE),
        ];
        // One pass over the headers, skipping every name without the hints' prefix by its first
        // bytes, rather than four hashed lookups on every request: most requests carry no hints.
        let mut found: [Option<Option<&str>>; 4] = [None; 4];
        for (name, value) in headers {
            if !name.as_str().starts_with(SEC_CH_UA) {
                continue;
            }
            if let Some(index) = NAMES.iter().position(|hint| hint == name) {
                found[index].get_or_insert_with(|| value.to_str().ok());
            }
        }
        let [ua, platform, platform_version, mobile] = found.map(Option::flatten);
        ClientHints::from_header_values(ua, platform, platform_version, mobile)
    }

    /// Whether no hint was received.
    pub fn is_empty(&self) -> bool {
        self.ua.is_none()
            && self.platform.is_none()
            && self.platform_version.is_none()
            && self.mobile.is_none()
    }

    /// The brand list from `Sec-CH-UA`, GREASE entries included; empty if missing or malformed.
    pub fn brands(&self) -> Vec<Brand> {
        self.ua
            .as_deref()
            .and_then(parse_brand_list)
            .unwrap_or_default()
    }

    /// The brand that names the browser: never a GREASE entry, and "Chromium" only when nothing
    /// more specific is listed (Chrome, Edge, Opera and Brave all list "Chromium" too).
    pub fn brand(&self) -> Option<Brand> {
        let brands = self.brands();
        let mut best: Option<Brand> = None;
        for brand in brands {
            if brand.is_grease() {
                continue;
            }
            if best.as_ref().is_none_or(|b| brand.rank() < b.rank()) {
                best = Some(brand);
            }
        }
        best
    }

    /// The platform, if it is one the summaries know about.
    fn platform_kind(&self) -> Option<Platform> {
        match self.platform.as_deref()? {
            "Windows" => Some(Platform::Windows),
            "macOS" => Some(Platform::MacOs),
            "Android" => Some(Platform::Android),
            "iOS" => Some(Platform::Ios),
            "Linux" => Some(Platform::Linux),
            "Chrome OS" | "Chromium OS" | "ChromeOS" => Some(Platform::ChromeOs),
            _ => None,
        }
    }

    /// The platform version, re-validated because stored hints are untrusted JSON.
    fn checked_platform_version(&self) -> Option<&str> {
        self.platform_version.as_deref().filter(|v| is_version(v))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Platform {
    Windows,
    MacOs,
    Android,
    Ios,
    Linux,
    ChromeOs,
}

/// What is known about the device behind a request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceSummary {
    /// Browser (or crawler, or HTTP library) name, e.g. "Firefox", "Googlebot", "curl".
    pub browser: Option<String>,
    /// Its full version as reported, e.g. "128.0".
    pub browser_version: Option<String>,
    /// Operating system or device, e.g. "Windows 11", "macOS", "Android", "iPhone", "PlayStation 4".
    pub os: Option<String>,
    /// The OS version, e.g. "14" for Android or "14.5.0" for macOS from a hint. `None` for Windows,
    /// whose name carries its release.
    pub os_version: Option<String>,
    /// The broad kind of device.
    pub category: DeviceCategory,
    /// One line for people, e.g. "Firefox 128 on Windows 10", "Googlebot (crawler)" or
    /// [`UNKNOWN_DEVICE`]. Versions in it are major versions only.
    pub summary: String,
}

impl Default for DeviceSummary {
    fn default() -> Self {
        DeviceSummary::unknown()
    }
}

impl fmt::Display for DeviceSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary)
    }
}

impl DeviceSummary {
    /// The summary for a device nothing is known about.
    pub fn unknown() -> DeviceSummary {
        DeviceSummary {
            browser: None,
            browser_version: None,
            os: None,
            os_version: None,
            category: DeviceCategory::Unknown,
            summary: UNKNOWN_DEVICE.to_owned(),
        }
    }

    /// Summarises a user agent string without client hints.
    pub fn from_user_agent(user_agent: &str) -> DeviceSummary {
        DeviceSummary::from_request(Some(user_agent), &ClientHints::default())
    }

    /// Summarises a request from its `User-Agent` header and client hints. Hints refine what the
    /// user agent says (brand, Windows 11, macOS and Android versions) but never contradict its
    /// platform; with no user agent the hints alone are used.
    pub fn from_request(user_agent: Option<&str>, hints: &ClientHints) -> DeviceSummary {
        let user_agent = user_agent
            .map(str::trim)
            .filter(|ua| !ua.is_empty() && ua.len() <= MAX_USER_AGENT_LEN);
        let mut detected = user_agent.map(detect).unwrap_or_default();
        detected.apply_hints(hints);
        detected.finish()
    }

    /// Whether nothing is known about the device.
    pub fn is_unknown(&self) -> bool {
        self.summary == UNKNOWN_DEVICE
    }
}

/// The intermediate result while combining the user agent and hints.
#[derive(Debug, Default)]
struct Detected {
    browser: Option<String>,
    browser_version: Option<String>,
    os: Option<String>,
    os_version: Option<String>,
    category: DeviceCategory,
    /// Only a hint's macOS version is shown: every current browser freezes the user agent at
    /// "Mac OS X 10_15_7" (or "10.15"), so the user agent's says nothing.
    mac_version_from_hint: bool,
}

/// Parses a user agent with woothee and humanises its names.
fn detect(user_agent: &str) -> Detected {
    let Some(parsed) = woothee::parser::Parser::new().parse(user_agent) else {
        return Detected::default();
    };
    let category = DeviceCategory::from_woothee(parsed.category);
    let mut detected = Detected {
        category,
        ..Detected::default()
    };
    match category {
        DeviceCategory::Crawler => {
            detected.browser = Some(crawler_name(parsed.name, user_agent));
        }
        DeviceCategory::Appliance | DeviceCategory::MobilePhone => {
            // For these woothee's "name" is the device ("PlayStation 4", "docomo"), not a browser.
            detected.os = known(parsed.name).map(str::to_owned);
            detected.os_version = numeric_version(&parsed.os_version);
        }
        _ if parsed.name == "HTTP Library" => {
            if let Some((name, version)) = product_token(user_agent) {
                detected.browser = Some(name.to_owned());
                detected.browser_version = version.map(str::to_owned);
            }
        }
        _ => {
            let os = known(parsed.os).map(humanize_os);
            detected.browser = known(parsed.name).map(|name| humanize_browser(name, os));
            detected.browser_version = match detected.browser.as_deref() {
                // Android's "Version/4.0" token is a constant, not the WebView's version.
                Some("WebView" | "Android Browser") => None,
                _ => numeric_version(parsed.version),
            };
            detected.os_version = match os {
                Some(os) if os.starts_with("Windows") && os != "Windows Phone" => None,
                Some(_) => numeric_version(&parsed.os_version),
                None => None,
            };
            detected.os = os.map(str::to_owned);
        }
    }
    detected
}

impl Detected {
    fn apply_hints(&mut self, hints: &ClientHints) {
        // Bots send whatever they like; their hints are not worth believing.
        if self.category == DeviceCategory::Crawler || hints.is_empty() {
            return;
        }
        let from_user_agent = self.browser.is_some() || self.os.is_some();

        if let Some(brand) = hints.brand() {
            let chromium = match self.browser.as_deref() {
                None => !from_user_agent,
                Some(name) => is_chromium_based(name),
            };
            if chromium {
                let name: String = brand.display_name().chars().take(MAX_NAME_LEN).collect();
                if self.browser.as_deref() != Some(name.as_str()) {
                    self.browser = Some(name);
                    self.browser_version = brand.version;
                } else if self.browser_version.is_none() {
                    self.browser_version = brand.version;
                }
            }
        }

        let version = hints.checked_platform_version();
        match hints.platform_kind() {
            Some(Platform::Windows)
                if self.os_is(|os| os.starts_with("Windows") && os != "Windows Phone") =>
            {
                let current = self.os.as_deref().unwrap_or("Windows");
                let release = version.and_then(windows_release).unwrap_or(current);
                self.os = Some(release.to_owned());
                self.os_version = None;
            }
            Some(Platform::MacOs) if self.os_is(|os| os == "macOS") => {
                self.os = Some("macOS".to_owned());
                if let Some(version) = version {
                    self.os_version = Some(version.to_owned());
                    self.mac_version_from_hint = true;
                }
            }
            Some(Platform::Android) if self.os_is(|os| os == "Android") => {
                self.os = Some("Android".to_owned());
                // Reduced Android user agents all say "Android 10; K".
                if let Some(version) = version {
                    self.os_version = Some(version.to_owned());
                }
            }
            Some(Platform::Ios) if self.os.is_none() => self.os = Some("iOS".to_owned()),
            Some(Platform::Linux) if self.os.is_none() => self.os = Some("Linux".to_owned()),
            Some(Platform::ChromeOs) if self.os.is_none() => {
                self.os = Some("ChromeOS".to_owned());
            }
            _ => {}
        }

        if !from_user_agent && self.category == DeviceCategory::Unknown {
            self.category = match (hints.platform_kind(), hints.mobile) {
                (Some(Platform::Android | Platform::Ios), _) | (_, Some(true)) => {
                    DeviceCategory::Smartphone
                }
                (
                    Some(
                        Platform::Windows | Platform::MacOs | Platform::Linux | Platform::ChromeOs,
                    ),
                    _,
                ) => DeviceCategory::Desktop,
                _ => DeviceCategory::Unknown,
            };
        }
    }

    /// True when the OS is still unknown or satisfies `matches`: hints may refine the user agent's
    /// platform but not replace it with another.
    fn os_is(&self, matches: impl Fn(&str) -> bool) -> bool {
        self.os.as_deref().is_none_or(matches)
    }

    fn finish(self) -> DeviceSummary {
        let summary = self.summary_line();
        let category = if summary == UNKNOWN_DEVICE {
            DeviceCategory::Unknown
        } else {
            self.category
        };
        DeviceSummary {
            browser: self.browser,
            browser_version: self.browser_version,
            os: self.os,
            os_version: self.os_version,
            category,
            summary,
        }
    }

    fn summary_line(&self) -> String {
        if self.category == DeviceCategory::Crawler {
            let name = self.browser.as_deref().unwrap_or("Crawler");
            return format!("{name} (crawler)");
        }
        let browser = self.browser.as_deref().map(|name| {
            match self.browser_version.as_deref().and_then(major_version) {
                Some(major) => format!("{name} {major}"),
                None => name.to_owned(),
            }
        });
        let os = self.os.as_deref().map(|os| self.os_label(os));
        match (browser, os) {
            (Some(browser), Some(os)) => format!("{browser} on {os}"),
            (Some(label), None) | (None, Some(label)) => label,
            (None, None) => UNKNOWN_DEVICE.to_owned(),
        }
    }

    fn os_label(&self, os: &str) -> String {
        let version = self.os_version.as_deref();
        let label_version = match os {
            "Android" | "Windows Phone" => version.and_then(major_version).map(str::to_owned),
            "macOS" if self.mac_version_from_hint => version.and_then(mac_release),
            _ => None,
        };
        match label_version {
            Some(v) => format!("{os} {v}"),
            None => os.to_owned(),
        }
    }
}

/// Woothee's placeholder for "not detected" becomes `None`.
fn known(value: &str) -> Option<&str> {
    (!value.is_empty() && value != "UNKNOWN").then_some(value)
}

fn humanize_os(os: &str) -> &str {
    match os {
        "Mac OSX" => "macOS",
        "Mac OS Classic" => "Mac OS",
        "Windows UNKNOWN Ver" => "Windows",
        "Windows Phone OS" => "Windows Phone",
        other => other,
    }
}

fn humanize_browser(name: &str, os: Option<&str>) -> String {
    match (name, os) {
        // Woothee calls Android's pre-Chrome stock browser "Safari" because of its user agent.
        ("Safari", Some("Android")) => "Android Browser".to_owned(),
        ("SamsungBrowser", _) => "Samsung Internet".to_owned(),
        ("Webview", _) => "WebView".to_owned(),
        (other, _) => other.to_owned(),
    }
}

fn is_chromium_based(browser: &str) -> bool {
    matches!(
        browser,
        "Chrome"
            | "Chromium"
            | "Edge"
            | "Opera"
            | "Vivaldi"
            | "Yandex Browser"
            | "Samsung Internet"
            | "WebView"
            | "Brave"
    )
}

/// A crawler's display name; woothee lumps many bots into "misc crawler", so the bot's own
/// product token ("YandexBot/3.0") is used for those.
fn crawler_name(woothee_name: &str, user_agent: &str) -> String {
    let name = match woothee_name {
        "misc crawler" => return bot_token(user_agent).unwrap_or("Crawler").to_owned(),
        "bingbot" => "Bingbot",
        "msnbot" => "MSNBot",
        "facebook" => "Facebook",
        "twitter" => "Twitterbot",
        "ahref AhrefsBot" => "AhrefsBot",
        "SeoMoz rogerbot" => "rogerbot",
        other => known(other).unwrap_or("Crawler"),
    };
    name.to_owned()
}

fn bot_token(user_agent: &str) -> Option<&str> {
    user_agent
        .split(|c: char| c.is_whitespace() || matches!(c, ';' | '(' | ')' | ',' | '+'))
        .map(|token| token.split('/').next().unwrap_or(token))
        .find(|name| {
            let lower = name.to_ascii_lowercase();
            is_product_name(name)
                && (lower.contains("bot") || lower.contains("spider") || lower.contains("crawler"))
        })
}

/// The leading `name/version` token of a tool's user agent, e.g. ("curl", Some("8.5.0")).
fn product_token(user_agent: &str) -> Option<(&str, Option<&str>)> {
    let first = user_agent.split_whitespace().next()?;
    let (name, version) = match first.split_once('/') {
        Some((name, version)) => (name, Some(version)),
        None => (first, None),
    };
    is_product_name(name).then_some((name, version.filter(|v| is_version(v))))
}

fn is_product_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Digits and dots only, starting with a digit, of sane length: "128.0", "15.0.0".
fn is_version(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_VERSION_LEN
        && value.starts_with(|c: char| c.is_ascii_digit())
        && value.chars().all(|c| c.is_ascii_digit() || c == '.')
}

fn numeric_version(value: &str) -> Option<String> {
    is_version(value).then(|| value.to_owned())
}

/// "131.0.6778.104" → "131".
fn major_version(version: &str) -> Option<&str> {
    let major = version.split('.').next()?;
    (!major.is_empty() && major.chars().all(|c| c.is_ascii_digit())).then_some(major)
}

fn version_parts(version: &str) -> (Option<u32>, u32) {
    let mut parts = version.split('.');
    let major = parts.next().and_then(|p| p.parse().ok());
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor)
}

/// Microsoft's mapping of `Sec-CH-UA-Platform-Version` on Windows: 13 and up is Windows 11, 1 to 10
/// is Windows 10, and 0.1/0.2/0.3 are Windows 7/8/8.1. Anything else keeps the user agent's answer.
fn windows_release(platform_version: &str) -> Option<&'static str> {
    match version_parts(platform_version) {
        (Some(13..), _) => Some("Windows 11"),
        (Some(1..=10), _) => Some("Windows 10"),
        (Some(0), 1) => Some("Windows 7"),
        (Some(0), 2) => Some("Windows 8"),
        (Some(0), 3) => Some("Windows 8.1"),
        _ => None,
    }
}

/// The marketing release of a macOS version: "14.5.0" → "14", but "10.15.7" → "10.15" because
/// before Big Sur the minor number was the release.
fn mac_release(version: &str) -> Option<String> {
    match version_parts(version) {
        (Some(10), minor) => Some(format!("10.{minor}")),
        (Some(major), _) if major > 0 => Some(major.to_string()),
        _ => None,
    }
}

/// The whole value must be one sf-string: `"Windows"` → `Windows`.
fn parse_single_sf_string(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.len() > MAX_HINT_LEN {
        return None;
    }
    let (value, rest) = parse_sf_string(raw)?;
    rest.trim().is_empty().then_some(value)
}

/// Parses an RFC 8941 sf-string at the start of `input`, returning it and what follows.
fn parse_sf_string(input: &str) -> Option<(String, &str)> {
    let body = input.strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, escaped @ ('"' | '\\'))) => value.push(escaped),
                _ => return None,
            },
            '"' => return Some((value, &body[index + 1..])),
            ' '..='~' => value.push(c),
            _ => return None,
        }
    }
    None
}

/// A parameter value: an sf-string, or a token or number taken verbatim.
fn parse_bare_item(input: &str) -> Option<(String, &str)> {
    if input.starts_with('"') {
        return parse_sf_string(input);
    }
    let end = input
        .find(|c: char| !(c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~:/?".contains(c)))
        .unwrap_or(input.len());
    (end > 0).then(|| (input[..end].to_owned(), &input[end..]))
}

/// Parses a `Sec-CH-UA` list: `"Chromium";v="131", "Google Chrome";v="131"`. `None` unless the
/// whole value is well formed.
fn parse_brand_list(raw: &str) -> Option<Vec<Brand>> {
    if raw.len() > MAX_HINT_LEN {
        return None;
    }
    let mut rest = raw.trim_start_matches([' ', '\t']);
    let mut brands = Vec::new();
    loop {
        let (name, after_name) = parse_sf_string(rest)?;
        rest = after_name;
        let mut version = None;
        while let Some(after_semicolon) = rest.strip_prefix(';') {
            let param = after_semicolon.trim_start_matches(' ');
            let key_end = param
                .find(|c: char| {
                    !(c.is_ascii_lowercase()
                        || c.is_ascii_digit()
                        || matches!(c, '_' | '-' | '.' | '*'))
                })
                .unwrap_or(param.len());
            if key_end == 0 {
                return None;
            }
            let (key, after_key) = param.split_at(key_end);
            rest = after_key;
            if let Some(after_equals) = rest.strip_prefix('=') {
                let (value, after_value) = parse_bare_item(after_equals)?;
                rest = after_value;
                if key == "v" {
                    version = Some(value);
                }
            }
        }
        if name.is_empty() || name.len() > MAX_NAME_LEN || brands.len() >= MAX_BRANDS {
            return None;
        }
        brands.push(Brand {
            name,
            version: version.filter(|v| is_version(v)),
        });
        rest = rest.trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            return Some(brands);
        }
        // A trailing comma leaves nothing here, which parse_sf_string rejects.
        rest = rest.strip_prefix(',')?.trim_start_matches([' ', '\t']);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_keys_round_trip_through_serde_and_from_key() {
        for category in DeviceCategory::ALL {
            let json = serde_json::to_string(&category).expect("serialise");
            assert_eq!(json, format!("\"{}\"", category.as_str()));
            assert_eq!(DeviceCategory::from_key(category.as_str()), Some(category));
        }
        assert_eq!(DeviceCategory::MobilePhone.to_string(), "Mobile phone");
        assert_eq!(DeviceCategory::from_key("tablet"), None);
    }

    #[test]
    fn hints_are_read_from_the_first_value_of_each_header() {
        use axum::http::{HeaderMap, HeaderValue};
        let mut headers = HeaderMap::new();
        assert!(ClientHints::from_headers(&headers).is_empty());
        headers.append("user-agent", HeaderValue::from_static("Mozilla/5.0"));
        headers.append(
            "sec-ch-ua-platform",
            HeaderValue::from_static("\"Windows\""),
        );
        headers.append("sec-ch-ua-platform", HeaderValue::from_static("\"Linux\""));
        headers.append("sec-ch-ua-mobile", HeaderValue::from_static("?0"));
        headers.append(
            "sec-ch-ua",
            HeaderValue::from_static("\"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\""),
        );
        headers.append("sec-ch-ua-arch", HeaderValue::from_static("\"x86\""));
        headers.append(
            "sec-ch-ua-platform-version",
            HeaderValue::from_bytes(b"\"15\xff\"").unwrap(),
        );
        headers.append(
            "sec-ch-ua-platform-version",
            HeaderValue::from_static("\"16.0.0\""),
        );
        assert_eq!(
            ClientHints::from_headers(&headers),
            ClientHints {
                ua: Some("\"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"".to_owned()),
                platform: Some("Windows".to_owned()),
                // The first value is not text: missing, as through `HeaderMap::get`.
                platform_version: None,
                mobile: Some(false),
            }
        );
    }

    #[test]
    fn sf_strings_handle_escapes_and_reject_control_characters() {
        assert_eq!(
            parse_sf_string(r#""a\"b\\c" rest"#),
            Some((r#"a"b\c"#.to_owned(), " rest"))
        );
        assert_eq!(parse_sf_string("\"unterminated"), None);
        assert_eq!(parse_sf_string("\"bad \\x escape\""), None);
        assert_eq!(parse_sf_string("\"tab\there\""), None);
        assert_eq!(parse_sf_string("no quote"), None);
    }

    #[test]
    fn brand_lists_keep_semicolons_inside_quoted_grease_names() {
        let brands = parse_brand_list(r#""Not)A;Brand";v="99", "Google Chrome";v="131""#)
            .expect("valid list");
        assert_eq!(brands.len(), 2);
        assert!(brands[0].is_grease());
        assert_eq!(brands[1].version.as_deref(), Some("131"));
    }

    #[test]
    fn brand_lists_with_trailing_commas_or_junk_are_rejected() {
        assert_eq!(parse_brand_list(r#""Chromium";v="131","#), None);
        assert_eq!(parse_brand_list(r#""Chromium";v="131" junk"#), None);
        assert_eq!(parse_brand_list(""), None);
        assert_eq!(parse_brand_list(r#""";v="1""#), None);
    }

    #[test]
    fn windows_platform_versions_follow_microsofts_mapping() {
        assert_eq!(windows_release("15.0.0"), Some("Windows 11"));
        assert_eq!(windows_release("13.0.0"), Some("Windows 11"));
        assert_eq!(windows_release("10.0.0"), Some("Windows 10"));
        assert_eq!(windows_release("1.0.0"), Some("Windows 10"));
        assert_eq!(windows_release("0.3.0"), Some("Windows 8.1"));
        assert_eq!(windows_release("0.1.0"), Some("Windows 7"));
        assert_eq!(windows_release("12.0.0"), None);
        assert_eq!(windows_release("0.0.0"), None);
    }

    #[test]
    fn mac_releases_use_the_minor_number_before_big_sur() {
        assert_eq!(mac_release("14.5.0").as_deref(), Some("14"));
        assert_eq!(mac_release("10.15.7").as_deref(), Some("10.15"));
        assert_eq!(mac_release("0.1").as_deref(), None);
    }

    #[test]
    fn major_version_needs_leading_digits() {
        assert_eq!(major_version("131.0.6778.104"), Some("131"));
        assert_eq!(major_version(".5"), None);
    }
}
