//! Absolute time: a recording's start (UTC) and the time of every sample.
//!
//! Why its own small type rather than a date-time crate: sigstream needs
//! exactly three things — parse an ISO 8601 UTC timestamp (`--start-time`,
//! and the formats' own metadata), add a sample offset to it, and print it
//! as ISO 8601 with microseconds (`2024-03-01T12:00:00.250000Z`, as ObsPy's
//! `UTCDateTime` prints). Time zones, calendars other than the proleptic
//! Gregorian one, leap seconds (which neither miniSEED, SAC nor ObsPy
//! count) and formatting options are out of scope, and the civil-date
//! arithmetic is a dozen lines (Howard Hinnant's `days_from_civil`), tested
//! here against a day-by-day count.
//!
//! Times are held in integer nanoseconds since 1970-01-01T00:00:00Z (as
//! ObsPy's `UTCDateTime._ns`), from 1678 to 2261, so adding an offset
//! never accumulates rounding.

use std::fmt;

use crate::error::{Error, Result};

/// A UTC instant, in nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTime {
    ns: i64,
}

const NS_PER_S: i64 = 1_000_000_000;
const S_PER_DAY: i64 = 86_400;

impl UtcTime {
    /// The instant `ns` nanoseconds after 1970-01-01T00:00:00Z.
    pub fn from_ns(ns: i64) -> Self {
        UtcTime { ns }
    }

    /// Nanoseconds since 1970-01-01T00:00:00Z.
    pub fn ns(self) -> i64 {
        self.ns
    }

    /// The instant at a civil date and time (UTC), `None` when a field is
    /// out of range or the instant is outside 1678–2261.
    pub fn from_civil(
        year: i64,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        nanos: u32,
    ) -> Option<Self> {
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
            || nanos >= NS_PER_S as u32
        {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let secs = days
            .checked_mul(S_PER_DAY)?
            .checked_add(i64::from(hour * 3600 + minute * 60 + second))?;
        let ns = secs.checked_mul(NS_PER_S)?.checked_add(i64::from(nanos))?;
        Some(UtcTime { ns })
    }

    /// The instant at an ordinal date (year and day of the year, 1–366)
    /// and a time of day, as miniSEED and SAC headers give it; a second of
    /// 60 (a leap second, which none of the formats counts) is the first
    /// second of the next minute. `None` when a field is out of range or the
    /// instant is outside 1678–2261.
    pub fn from_ordinal(
        year: i64,
        day_of_year: u32,
        hour: u32,
        minute: u32,
        second: u32,
        nanos: u32,
    ) -> Option<Self> {
        let days_in_year = if is_leap(year) { 366 } else { 365 };
        if !(1..=days_in_year).contains(&day_of_year) || second > 60 {
            return None;
        }
        let jan1 = UtcTime::from_civil(year, 1, 1, hour, minute, 0, nanos)?;
        let secs = i64::from(day_of_year - 1) * S_PER_DAY + i64::from(second);
        jan1.ns
            .checked_add(secs.checked_mul(NS_PER_S)?)
            .map(UtcTime::from_ns)
    }

    /// Parses an ISO 8601 timestamp: `YYYY-MM-DDTHH:MM:SS` (a space may
    /// replace the `T`), an optional fraction of a second (any number of
    /// digits; beyond nanoseconds it is rounded), and an optional zone: `Z`,
    /// `+HH:MM`, `-HH:MM` or `+HHMM` (none means UTC, as in ObsPy).
    ///
    /// # Errors
    /// [`Error::Usage`] naming what is wrong.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::usage(format!(
                "{text:?} is not a UTC time ({why}); give e.g. 2024-03-01T12:00:00.25Z"
            ))
        };
        let b = text.trim().as_bytes();
        let digits = |at: usize, n: usize| -> Option<u32> {
            let s = b.get(at..at + n)?;
            s.iter()
                .all(u8::is_ascii_digit)
                .then(|| s.iter().fold(0u32, |v, d| v * 10 + u32::from(d - b'0')))
        };
        let expect = |at: usize, c: &[u8]| b.get(at).is_some_and(|x| c.contains(x));
        let (Some(year), true, Some(month), true, Some(day)) = (
            digits(0, 4),
            expect(4, b"-"),
            digits(5, 2),
            expect(7, b"-"),
            digits(8, 2),
        ) else {
            return Err(bad("the date must be YYYY-MM-DD"));
        };
        let (true, Some(hour), true, Some(minute), true, Some(second)) = (
            expect(10, b"T "),
            digits(11, 2),
            expect(13, b":"),
            digits(14, 2),
            expect(16, b":"),
            digits(17, 2),
        ) else {
            return Err(bad("the time must be THH:MM:SS"));
        };
        let mut at = 19;
        // The fraction, rounded to nanoseconds (half away from zero).
        let mut nanos: u64 = 0;
        let mut carry = false;
        if expect(at, b".,") {
            at += 1;
            let start = at;
            while b.get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
            }
            if at == start {
                return Err(bad("no digits after the decimal point"));
            }
            let frac = &b[start..at];
            for i in 0..9 {
                nanos = nanos * 10 + frac.get(i).map_or(0, |d| u64::from(d - b'0'));
            }
            if frac.get(9).is_some_and(|&d| d >= b'5') {
                nanos += 1;
                if nanos == NS_PER_S as u64 {
                    nanos = 0;
                    carry = true;
                }
            }
        }
        let offset_s: i64 = match b.get(at) {
            None => 0,
            Some(b'Z' | b'z') if at + 1 == b.len() => 0,
            Some(&sign @ (b'+' | b'-')) => {
                let (hh, mm, end) = match (digits(at + 1, 2), b.get(at + 3)) {
                    (Some(h), Some(b':')) => (Some(h), digits(at + 4, 2), at + 6),
                    (Some(h), _) => (Some(h), digits(at + 3, 2), at + 5),
                    _ => (None, None, 0),
                };
                let (Some(hh), Some(mm)) = (hh, mm) else {
                    return Err(bad("the zone must be Z, +HH:MM or -HH:MM"));
                };
                if end != b.len() || hh > 23 || mm > 59 {
                    return Err(bad("the zone must be Z, +HH:MM or -HH:MM"));
                }
                let s = i64::from(hh * 3600 + mm * 60);
                if sign == b'+' { s } else { -s }
            }
            Some(_) => return Err(bad("unexpected text after the seconds")),
        };
        let t = UtcTime::from_civil(
            i64::from(year),
            month,
            day,
            hour,
            minute,
            second,
            nanos as u32,
        )
        .ok_or_else(|| bad("a field is out of range, or the year is outside 1678–2261"))?;
        // Local time = UTC + offset, so UTC = local − offset.
        let adjust = i64::from(carry) * NS_PER_S - offset_s * NS_PER_S;
        t.ns.checked_add(adjust)
            .map(UtcTime::from_ns)
            .ok_or_else(|| bad("outside 1678–2261"))
    }

    /// This instant plus `seconds` (rounded to the nanosecond, as ObsPy's
    /// `UTCDateTime + float` does); `None` outside the representable range.
    pub fn plus_seconds(self, seconds: f64) -> Option<Self> {
        let ns = (seconds * 1e9).round();
        if !ns.is_finite() || ns.abs() >= 9.2e18 {
            return None;
        }
        self.ns.checked_add(ns as i64).map(UtcTime::from_ns)
    }

    /// The time of sample `index` of a recording that starts at this
    /// instant and is sampled at `rate` Hz: `start + index / rate`, the
    /// quotient rounded to the nanosecond (ObsPy's
    /// `stats.starttime + index / stats.sampling_rate`).
    pub fn at_sample(self, index: u64, rate: f64) -> Option<Self> {
        self.plus_seconds(index as f64 / rate)
    }

    /// The civil date and time: (year, month, day, hour, minute, second,
    /// nanosecond).
    pub fn civil(self) -> (i64, u32, u32, u32, u32, u32, u32) {
        let secs = self.ns.div_euclid(NS_PER_S);
        let nanos = self.ns.rem_euclid(NS_PER_S) as u32;
        let days = secs.div_euclid(S_PER_DAY);
        let tod = secs.rem_euclid(S_PER_DAY) as u32;
        let (y, m, d) = civil_from_days(days);
        (y, m, d, tod / 3600, tod / 60 % 60, tod % 60, nanos)
    }
}

/// ISO 8601 in UTC with microseconds, e.g. `2024-03-01T12:00:00.250000Z`:
/// the nanoseconds rounded to the nearest microsecond (half up), as
/// ObsPy's `str(UTCDateTime)` prints them.
impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // To the nearest microsecond, half up (saturating at the range's end).
        let micros = self
            .ns
            .div_euclid(1000)
            .saturating_add(i64::from(self.ns.rem_euclid(1000) >= 500));
        let rounded = UtcTime {
            ns: micros.saturating_mul(1000),
        };
        let (y, mo, d, h, mi, s, ns) = rounded.civil();
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}Z",
            ns / 1000
        )
    }
}

impl serde::Serialize for UtcTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
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

/// Days from 1970-01-01 to the proleptic Gregorian date y-m-d (Howard
/// Hinnant, "chrono-Compatible Low-Level Date Algorithms").
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_agree_with_a_day_by_day_count() {
        // Independent reference: walk the calendar one day at a time from
        // 1970-01-01, forwards to 2261 and backwards to 1678.
        let (mut y, mut m, mut d) = (1970i64, 1u32, 1u32);
        for n in 0..(292 * 366) {
            if y > 2261 {
                break;
            }
            assert_eq!(days_from_civil(y, m, d), n, "{y}-{m}-{d}");
            assert_eq!(civil_from_days(n), (y, m, d));
            d += 1;
            if d > days_in_month(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
        let (mut y, mut m, mut d) = (1969i64, 12u32, 31u32);
        for n in 1..(292 * 366) {
            if y < 1678 {
                break;
            }
            assert_eq!(days_from_civil(y, m, d), -n, "{y}-{m}-{d}");
            assert_eq!(civil_from_days(-n), (y, m, d));
            if d == 1 {
                m = if m == 1 { 12 } else { m - 1 };
                if m == 12 {
                    y -= 1;
                }
                d = days_in_month(y, m);
            } else {
                d -= 1;
            }
        }
    }

    #[test]
    fn parses_and_prints_iso_8601() {
        // POSIX timestamps of these instants (date -u -d ... +%s).
        let t = UtcTime::parse("2024-03-01T12:00:00.25Z").unwrap();
        assert_eq!(t.ns(), 1_709_294_400 * NS_PER_S + 250_000_000);
        assert_eq!(t.to_string(), "2024-03-01T12:00:00.250000Z");
        for (text, ns) in [
            ("1970-01-01T00:00:00Z", 0),
            ("1970-01-01 00:00:01", NS_PER_S),
            ("1969-12-31T23:59:59.999999999Z", -1),
            ("2000-02-29T00:00:00+01:00", 951_778_800 * NS_PER_S),
            ("2000-02-28T23:30:00-0030", 951_782_400 * NS_PER_S),
            ("2024-03-01T12:00:00.9999999996Z", 1_709_294_401 * NS_PER_S),
        ] {
            assert_eq!(UtcTime::parse(text).unwrap().ns(), ns, "{text}");
        }
        assert_eq!(
            UtcTime::from_ns(-1).to_string(),
            "1970-01-01T00:00:00.000000Z",
            "rounded to the microsecond"
        );
        assert_eq!(
            UtcTime::from_ns(1_499).to_string(),
            "1970-01-01T00:00:00.000001Z"
        );
        // The ends of the range print without overflow.
        assert_eq!(
            UtcTime::from_ns(i64::MAX).to_string(),
            "2262-04-11T23:47:16.854775Z"
        );
        assert!(
            UtcTime::from_ns(i64::MIN)
                .to_string()
                .starts_with("1677-09-21T")
        );
        for bad in [
            "",
            "2024-03-01",
            "2024-3-01T00:00:00Z",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-03-01T24:00:00Z",
            "2024-03-01T00:00:00.Z",
            "2024-03-01T00:00:00Zx",
            "2024-03-01T00:00:00+25:00",
            "1600-01-01T00:00:00Z",
            "2300-01-01T00:00:00Z",
        ] {
            assert!(UtcTime::parse(bad).is_err(), "{bad:?} refused");
        }
    }

    #[test]
    fn sample_times_are_start_plus_index_over_rate() {
        let t = UtcTime::parse("2024-03-01T12:00:00Z").unwrap();
        let at = t.at_sample(8_640_000 - 1, 100.0).unwrap();
        assert_eq!(at.to_string(), "2024-03-02T11:59:59.990000Z");
        // 1/3 s: rounded to the nanosecond, printed to the microsecond.
        assert_eq!(
            t.at_sample(1, 3.0).unwrap().to_string(),
            "2024-03-01T12:00:00.333333Z"
        );
        assert!(t.at_sample(u64::MAX, 1e-9).is_none());
    }
}
