//! FHIR `date`, `dateTime` and `instant` values: recognising them by
//! shape, cutting them to the year, and shifting them by whole days.
//!
//! Recognition is by the value's shape, not by the element's name, so a
//! date is caught in any element, including ones this crate has never
//! heard of. The cost is that a code which looks exactly like a date
//! (`2020-05`) is generalised too, which is the safe direction.

/// Elements whose FHIR type is `instant`: a bare year is not a valid
/// instant, so these become 1 January of the year at midnight UTC.
const INSTANT_KEYS: &[&str] = &["lastUpdated", "issued", "recorded", "timestamp", "when"];

/// A parsed FHIR date or date-time. Precision is kept: a month-only value
/// stays month-only after a shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FhirDate<'a> {
    /// Calendar year.
    pub(crate) year: i64,
    /// 1–12, when given.
    pub(crate) month: Option<u32>,
    /// 1–31, when given.
    pub(crate) day: Option<u32>,
    /// The time part from the `T` on (`T10:00:00+01:00`), or "".
    time: &'a str,
}

/// Parses `YYYY`, `YYYY-MM`, `YYYY-MM-DD` and `YYYY-MM-DDThh:mm…` values.
/// Anything else, including dates with trailing words, is not a date here
/// (free text is the scrubber's job).
pub(crate) fn parse(s: &str) -> Option<FhirDate<'_>> {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r.clone()).filter(|d| d.iter().all(u8::is_ascii_digit)).map(|_| &s[r]);
    let year: i64 = digits(0..4)?.parse().ok()?;
    let mut out = FhirDate { year, month: None, day: None, time: "" };
    if b.len() == 4 {
        return Some(out);
    }
    if b.get(4) != Some(&b'-') {
        return None;
    }
    let month: u32 = digits(5..7)?.parse().ok()?;
    if !(1..=12).contains(&month) {
        return None;
    }
    out.month = Some(month);
    if b.len() == 7 {
        return Some(out);
    }
    if b.get(7) != Some(&b'-') {
        return None;
    }
    let day: u32 = digits(8..10)?.parse().ok()?;
    if !(1..=days_in_month(year, month)).contains(&day) {
        return None;
    }
    out.day = Some(day);
    if b.len() == 10 {
        return Some(out);
    }
    let time = &s[10..];
    let ok = time.starts_with('T')
        && time.len() >= 6
        && time[1..].bytes().all(|c| c.is_ascii_digit() || matches!(c, b':' | b'.' | b'Z' | b'+' | b'-'));
    if !ok {
        return None;
    }
    out.time = time;
    Some(out)
}

impl FhirDate<'_> {
    /// True when the value says more than the year.
    pub(crate) fn finer_than_year(&self) -> bool {
        self.month.is_some()
    }

    /// The value cut to its year, in the form the element's type allows.
    pub(crate) fn year_only(&self, key: &str) -> String {
        if INSTANT_KEYS.contains(&key) && self.finer_than_year() {
            format!("{:04}-01-01T00:00:00Z", self.year)
        } else {
            format!("{:04}", self.year)
        }
    }

    /// The value moved by `days`, at its own precision. A year-only value
    /// is left alone: it carries no day to move, and Safe Harbor allows
    /// years anyway. A month-only value moves from mid-month.
    pub(crate) fn shifted(&self, days: i64) -> String {
        let Some(month) = self.month else {
            return format!("{:04}", self.year);
        };
        let day = self.day.unwrap_or(15);
        let (y, m, d) = civil_from_days(days_from_civil(self.year, month, day) + days);
        match self.day {
            None => format!("{y:04}-{m:02}"),
            Some(_) => format!("{y:04}-{m:02}-{d:02}{}", self.time),
        }
    }

    /// Whole years from this date to `as_of`; when the day or month is
    /// unknown, the largest age the value allows (the conservative side
    /// for the over-89 rule).
    pub(crate) fn max_age_at(&self, as_of: (i64, u32, u32)) -> i64 {
        let (ay, am, ad) = as_of;
        let (m, d) = (self.month.unwrap_or(1), self.day.unwrap_or(1));
        let mut age = ay - self.year;
        if (am, ad) < (m, d) {
            age -= 1;
        }
        age
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Today's date in UTC, from the system clock: the default "export date"
/// for the over-89 rule.
pub(crate) fn today() -> (i64, u32, u32) {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    civil_from_days((secs / 86_400) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert!(parse("1937").is_some());
        assert!(parse("1937-04").is_some());
        assert!(parse("1937-04-17").is_some());
        assert!(parse("2015-02-07T13:28:17.239+02:00").is_some());
        assert!(parse("1937-13-01").is_none());
        assert!(parse("1937-02-30").is_none());
        assert!(parse("1937-04-17 and more").is_none());
        assert!(parse("19370417").is_none());
        assert!(parse("12345").is_none());
    }

    #[test]
    fn shift_keeps_precision_and_time() {
        let d = parse("2020-02-28T10:00:00Z").expect("date");
        assert_eq!(d.shifted(2), "2020-03-01T10:00:00Z");
        assert_eq!(parse("2021-01").expect("date").shifted(-30), "2020-12");
        assert_eq!(parse("2021").expect("date").shifted(-300), "2021");
    }

    #[test]
    fn civil_round_trip() {
        for z in [-800_000, -1, 0, 1, 18_000, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }

    #[test]
    fn ages() {
        let b = parse("1937-04-17").expect("date");
        assert_eq!(b.max_age_at((2027, 4, 16)), 89);
        assert_eq!(b.max_age_at((2027, 4, 17)), 90);
        assert_eq!(parse("1937").expect("date").max_age_at((2027, 1, 1)), 90);
    }

    #[test]
    fn year_only_by_type() {
        let d = parse("2020-05-06T01:02:03Z").expect("date");
        assert_eq!(d.year_only("lastUpdated"), "2020-01-01T00:00:00Z");
        assert_eq!(d.year_only("effectiveDateTime"), "2020");
    }
}
