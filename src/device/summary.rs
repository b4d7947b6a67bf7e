//! [`DeviceSummary`]: a user agent (parsed by woothee) and the client hints, made readable.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::*;

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
