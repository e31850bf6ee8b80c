//! FHIR `date`, `dateTime` and `instant` values as half-open ranges of Unix seconds, the
//! shape date search works on. A value without a time zone is read as UTC.

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// `[lo, hi)` in Unix seconds, plus the precision the value was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub lo: i64,
    pub hi: i64,
    pub precision: Precision,
}

/// How precisely a date was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Precision {
    Year,
    Month,
    Day,
    Time,
}

impl DateRange {
    /// The range in Unix milliseconds, for values stored to the millisecond (a resource's
    /// `lastUpdated`). A time written with a fraction of a second is as narrow as its
    /// digits (`…:05.123Z` is one millisecond wide, `…:05.1Z` a tenth of a second); any
    /// other value spans its whole seconds. `written` is the text the range was parsed from.
    pub fn millis(&self, written: &str) -> (i64, i64) {
        let (lo, hi) = (self.lo.saturating_mul(1000), self.hi.saturating_mul(1000));
        if self.precision != Precision::Time {
            return (lo, hi);
        }
        let time = written.split_once('T').map_or("", |(_, t)| t);
        let digits: String = match time.split_once('.') {
            Some((_, rest)) => rest.chars().take_while(char::is_ascii_digit).collect(),
            None => String::new(),
        };
        if digits.is_empty() {
            return (lo, hi);
        }
        let kept = &digits[..digits.len().min(3)];
        let width = 10_i64.pow(3 - kept.len() as u32);
        let offset = kept.parse::<i64>().unwrap_or(0) * width;
        (lo + offset, lo + offset + width)
    }
}

fn num(s: &str, len: usize) -> Option<i32> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fn day_start(date: Date) -> i64 {
    PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc().unix_timestamp()
}

fn month_date(year: i32, month: u8) -> Option<Date> {
    Date::from_calendar_date(year, Month::try_from(month).ok()?, 1).ok()
}

/// Parses a FHIR date, dateTime or instant. Returns `None` for anything malformed,
/// including impossible dates such as 2023-02-30.
pub fn parse_date_range(value: &str) -> Option<DateRange> {
    let (date_part, time_part) = match value.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (value, None),
    };
    let mut fields = date_part.split('-');
    let year = num(fields.next()?, 4)?;
    let month = fields.next().map(|m| num(m, 2)).map_or(Some(None), |m| m.map(Some))?;
    let day = fields.next().map(|d| num(d, 2)).map_or(Some(None), |d| d.map(Some))?;
    if fields.next().is_some() {
        return None;
    }
    match (month, day, time_part) {
        (None, None, None) => {
            let lo = day_start(Date::from_calendar_date(year, Month::January, 1).ok()?);
            let hi = day_start(Date::from_calendar_date(year + 1, Month::January, 1).ok()?);
            Some(DateRange { lo, hi, precision: Precision::Year })
        }
        (Some(m), None, None) => {
            let start = month_date(year, u8::try_from(m).ok()?)?;
            let next = if m == 12 { month_date(year + 1, 1)? } else { month_date(year, u8::try_from(m + 1).ok()?)? };
            Some(DateRange { lo: day_start(start), hi: day_start(next), precision: Precision::Month })
        }
        (Some(m), Some(d), None) => {
            let date =
                Date::from_calendar_date(year, Month::try_from(u8::try_from(m).ok()?).ok()?, u8::try_from(d).ok()?)
                    .ok()?;
            let lo = day_start(date);
            Some(DateRange { lo, hi: lo + 86_400, precision: Precision::Day })
        }
        (Some(_), Some(_), Some(t)) => parse_date_time(date_part, t),
        _ => None,
    }
}

fn parse_date_time(date_part: &str, time_part: &str) -> Option<DateRange> {
    // Full RFC 3339 first (the normal FHIR dateTime/instant form).
    if let Ok(dt) = OffsetDateTime::parse(&format!("{date_part}T{time_part}"), &Rfc3339) {
        let lo = dt.unix_timestamp();
        return Some(DateRange { lo, hi: lo + 1, precision: Precision::Time });
    }
    // Search values may omit seconds or the zone: hh:mm[:ss][zone], read as UTC without zone.
    let (clock, offset) = split_zone(time_part)?;
    let mut parts = clock.split(':');
    let hour = u8::try_from(num(parts.next()?, 2)?).ok()?;
    let minute = u8::try_from(num(parts.next()?, 2)?).ok()?;
    let second = match parts.next() {
        Some(s) => u8::try_from(num(s.split('.').next()?, 2)?).ok()?,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    let date = parse_date_range(date_part)?;
    let date = OffsetDateTime::from_unix_timestamp(date.lo).ok()?.date();
    let time = Time::from_hms(hour, minute, second).ok()?;
    let lo = PrimitiveDateTime::new(date, time).assume_offset(offset).unix_timestamp();
    Some(DateRange { lo, hi: lo + 1, precision: Precision::Time })
}

fn split_zone(t: &str) -> Option<(&str, UtcOffset)> {
    if let Some(clock) = t.strip_suffix('Z') {
        return Some((clock, UtcOffset::UTC));
    }
    if let Some(pos) = t.rfind(['+', '-']) {
        let (clock, zone) = t.split_at(pos);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone[1..].split_once(':')?;
        let offset =
            UtcOffset::from_hms(sign * i8::try_from(num(h, 2)?).ok()?, sign * i8::try_from(num(m, 2)?).ok()?, 0)
                .ok()?;
        return Some((clock, offset));
    }
    Some((t, UtcOffset::UTC))
}

/// Formats Unix milliseconds as a FHIR `instant` (UTC, millisecond precision).
pub fn format_instant(unix_ms: i64) -> String {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precisions() {
        let y = parse_date_range("1980").expect("year");
        assert_eq!((y.hi - y.lo) / 86_400, 366, "1980 is a leap year");
        let m = parse_date_range("1980-02").expect("month");
        assert_eq!((m.hi - m.lo) / 86_400, 29);
        let d = parse_date_range("1980-02-29").expect("day");
        assert_eq!(d.hi - d.lo, 86_400);
        assert_eq!(d.lo, 320_630_400);
        let t = parse_date_range("1980-02-29T10:00:00+02:00").expect("time");
        assert_eq!(t.lo, 320_630_400 + 8 * 3600);
        let short = parse_date_range("1980-02-29T10:00").expect("search form");
        assert_eq!(short.lo, 320_630_400 + 10 * 3600);
        let frac = parse_date_range("2024-03-01T09:30:00.123Z").expect("fraction");
        assert_eq!(frac.precision, Precision::Time);
        // Milliseconds: as narrow as the digits written, whole seconds otherwise.
        let second = 1_709_285_400_i64 * 1000;
        assert_eq!(frac.millis("2024-03-01T09:30:00.123Z"), (second + 123, second + 124));
        let tenth = parse_date_range("2024-03-01T09:30:00.1Z").expect("tenth");
        assert_eq!(tenth.millis("2024-03-01T09:30:00.1Z"), (second + 100, second + 200));
        let micro = parse_date_range("2024-03-01T09:30:00.123456+00:00").expect("micro");
        assert_eq!(micro.millis("2024-03-01T09:30:00.123456+00:00"), (second + 123, second + 124));
        let whole = parse_date_range("2024-03-01T09:30:00Z").expect("whole");
        assert_eq!(whole.millis("2024-03-01T09:30:00Z"), (second, second + 1000));
        let day = parse_date_range("2024-03-01").expect("day");
        assert_eq!(
            day.millis("2024-03-01"),
            (second - (9 * 3600 + 30 * 60) * 1000, second - (9 * 3600 + 30 * 60) * 1000 + 86_400_000)
        );
    }

    #[test]
    fn malformed_dates_are_refused() {
        for bad in [
            "",
            "80",
            "1980-2",
            "1980-02-30",
            "1980-13",
            "1980-02-29T25:00:00Z",
            "abcd",
            "1980-02-29T",
            "1980--01",
            "1980-01-01-01",
        ] {
            assert!(parse_date_range(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn instants() {
        assert_eq!(format_instant(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_instant(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
