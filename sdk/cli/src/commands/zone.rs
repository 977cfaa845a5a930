//! The zone the CLI shows times in, and how a time is shown: always with its zone, so a run
//! table in UTC is never read as local time next to next-fire times in a schedule's zone.
//! `--tz ZONE` chooses it, else `TZ`, else this machine's zone, else UTC.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The display zone: `--tz` when given, else the user's zone (`TZ` or the system's).
pub fn display_zone(tz: Option<&str>) -> anyhow::Result<TimeZone> {
    match tz {
        Some(name) => faas_api::cron::time_zone(name).map_err(|e| anyhow::anyhow!("--tz: {e}")),
        // `TimeZone::system` reads `TZ` first; a machine without zone data shows UTC.
        None => Ok(TimeZone::try_system().unwrap_or(TimeZone::UTC)),
    }
}

/// `2026-12-05 03:00:00 CET`: `t` in `zone`, with the zone's abbreviation (or offset).
pub fn marked(t: Timestamp, zone: &TimeZone) -> String {
    t.to_zoned(zone.clone())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// A recorded RFC 3339 time shown in `zone`; `-` when there is none, as written when it does
/// not parse (a platform newer than this CLI).
pub fn marked_text(value: Option<&str>, zone: &TimeZone) -> String {
    match value {
        None => "-".into(),
        Some(text) => match text.parse::<Timestamp>() {
            Ok(t) => marked(t, zone),
            Err(_) => text.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_carry_their_zone() {
        let paris = display_zone(Some("Europe/Paris")).expect("a known zone");
        assert_eq!(
            marked_text(Some("2026-12-05T02:00:00Z"), &paris),
            "2026-12-05 03:00:00 CET"
        );
        assert_eq!(
            marked_text(Some("2026-12-05T02:00:00Z"), &TimeZone::UTC),
            "2026-12-05 02:00:00 UTC"
        );
        assert_eq!(marked_text(None, &paris), "-");
        assert_eq!(marked_text(Some("soon"), &paris), "soon");
        let err = display_zone(Some("Mars/Olympus"))
            .expect_err("an unknown zone")
            .to_string();
        assert!(err.starts_with("--tz: unknown time zone"), "{err}");
    }
}
