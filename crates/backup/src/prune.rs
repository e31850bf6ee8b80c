//! Which backups a grandfather-father-son schedule keeps: the newest backup of each of the
//! last `daily` days, `weekly` weeks (Monday to Sunday), `monthly` months and `yearly` years
//! that have one (UTC), and always the newest backup of all.

use std::collections::BTreeSet;

/// How many of each period to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub daily: usize,
    pub weekly: usize,
    pub monthly: usize,
    pub yearly: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Self { daily: 7, weekly: 5, monthly: 12, yearly: 6 }
    }
}

/// `(year, month)` of a day count since 1970-01-01 (UTC).
fn year_month(days: i64) -> (i64, i64) {
    // 2440588 is the Julian day of 1970-01-01; the calendar is the `time` crate's.
    let julian = i32::try_from(2_440_588 + days).unwrap_or(i32::MAX);
    match time::Date::from_julian_day(julian) {
        Ok(date) => (i64::from(date.year()), i64::from(u8::from(date.month()))),
        Err(_) => (i64::MAX, 0),
    }
}

/// The indexes (into `created_ms`) of the backups to keep.
pub fn select_kept(created_ms: &[i64], retention: Retention) -> BTreeSet<usize> {
    let mut order: Vec<usize> = (0..created_ms.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(created_ms[i]));
    let mut kept = BTreeSet::new();
    if let Some(&newest) = order.first() {
        kept.insert(newest);
    }
    type Bucket = fn(i64) -> i64;
    let buckets: [(usize, Bucket); 4] = [
        (retention.daily, |days| days),
        (retention.weekly, |days| (days + 3).div_euclid(7)),
        (retention.monthly, |days| {
            let (y, m) = year_month(days);
            y * 12 + m
        }),
        (retention.yearly, |days| year_month(days).0),
    ];
    for (limit, bucket) in buckets {
        let mut last = None;
        let mut count = 0;
        for &i in &order {
            if count >= limit {
                break;
            }
            let key = bucket(created_ms[i].div_euclid(86_400_000));
            if last != Some(key) {
                kept.insert(i);
                last = Some(key);
                count += 1;
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn calendar_arithmetic_is_right_at_the_edges() {
        assert_eq!(year_month(0), (1970, 1));
        assert_eq!(year_month(31), (1970, 2));
        assert_eq!(year_month(365 * 30 + 7), (2000, 1)); // 2000-01-01
        assert_eq!(year_month(11_016), (2000, 2)); // 2000-02-29
        assert_eq!(year_month(11_017), (2000, 3));
    }

    #[test]
    fn a_year_of_nightly_backups_keeps_the_schedule() {
        // 2026-01-01 00:30 UTC onwards, one backup a night for 400 nights.
        let start = 20_454 * DAY + 30 * 60_000;
        let created: Vec<i64> = (0..400).map(|n| start + n * DAY).collect();
        let kept = select_kept(&created, Retention { daily: 7, weekly: 4, monthly: 12, yearly: 2 });
        let newest = created.len() - 1;
        assert!(kept.contains(&newest));
        // The last seven nights.
        for n in newest - 6..=newest {
            assert!(kept.contains(&n), "night {n}");
        }
        // At most 7 + 4 + 12 + 2 backups, and old ones pruned.
        assert!(kept.len() <= 25, "{}", kept.len());
        assert!(kept.len() >= 12 + 4, "{}", kept.len());
        // 2026's last night stands for its year; its first night is gone.
        assert!(kept.contains(&364));
        assert!(!kept.contains(&0));
    }

    #[test]
    fn the_newest_backup_is_always_kept() {
        let kept = select_kept(&[5, 1, 9], Retention { daily: 0, weekly: 0, monthly: 0, yearly: 0 });
        assert_eq!(kept.into_iter().collect::<Vec<_>>(), vec![2]);
        assert!(select_kept(&[], Retention::default()).is_empty());
    }
}
