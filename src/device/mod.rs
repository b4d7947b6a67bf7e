//! What device a session is on: browser, operating system and a one-line summary such as
//! "Firefox 128 on Windows 10", from the `User-Agent` header (parsed by woothee) refined by
//! User-Agent Client Hints where Chromium has frozen the user agent string.
//!
//! Nothing here fails: a missing, empty, garbage or oversized user agent gives
//! [`UNKNOWN_DEVICE`], and malformed hints are ignored.

use std::fmt;

use serde::{Deserialize, Serialize};

#[cfg(feature = "device")]
mod summary;

#[cfg(feature = "device")]
pub use summary::DeviceSummary;

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
    #[cfg(feature = "device")]
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
    #[cfg(feature = "device")]
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
    #[cfg(feature = "device")]
    fn checked_platform_version(&self) -> Option<&str> {
        self.platform_version.as_deref().filter(|v| is_version(v))
    }
}

#[cfg(feature = "device")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Platform {
    Windows,
    MacOs,
    Android,
    Ios,
    Linux,
    ChromeOs,
}

/// Digits and dots only, starting with a digit, of sane length: "128.0", "15.0.0".
fn is_version(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_VERSION_LEN
        && value.starts_with(|c: char| c.is_ascii_digit())
        && value.chars().all(|c| c.is_ascii_digit() || c == '.')
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
