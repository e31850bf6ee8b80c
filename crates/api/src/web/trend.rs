//! Small trend charts for vital signs, drawn on the server as SVG: no script, nothing the
//! strict CSP would have to allow (presentation attributes only, no `style`), and a text
//! alternative that says what the line shows.

use super::html::escape;

/// One reading: its date (`YYYY-MM-DD`, for the label) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub date: String,
    pub value: f64,
}

const WIDTH: f64 = 240.0;
const HEIGHT: f64 = 56.0;
const PAD: f64 = 5.0;

/// An SVG line of `readings` (oldest first), labelled `label` (`Heart rate`) in `unit`.
/// Fewer than two readings draw no line: the table says it better.
pub fn sparkline(label: &str, unit: &str, readings: &[Reading]) -> String {
    if readings.len() < 2 {
        return String::new();
    }
    let (lo, hi) =
        readings.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| (lo.min(r.value), hi.max(r.value)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let step = (WIDTH - 2.0 * PAD) / (readings.len() - 1) as f64;
    let points: Vec<(f64, f64)> = readings
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let x = PAD + step * i as f64;
            let y = HEIGHT - PAD - (r.value - lo) / span * (HEIGHT - 2.0 * PAD);
            (x, y)
        })
        .collect();
    let line: Vec<String> = points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let (first, last) = (&readings[0], &readings[readings.len() - 1]);
    let (lx, ly) = points[points.len() - 1];
    let description = format!(
        "{label}: {} readings from {} to {}, lowest {} {unit}, highest {} {unit}, latest {} {unit}",
        readings.len(),
        first.date,
        last.date,
        super::fhir_view::number(lo),
        super::fhir_view::number(hi),
        super::fhir_view::number(last.value),
    );
    format!(
        "<svg class=\"trend\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" \
         aria-label=\"{d}\"><title>{d}</title>\
         <polyline fill=\"none\" stroke=\"#1f5fa8\" stroke-width=\"2\" points=\"{}\"/>\
         <circle cx=\"{lx:.1}\" cy=\"{ly:.1}\" r=\"3\" fill=\"#1f5fa8\"/></svg>",
        line.join(" "),
        d = escape(&description),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(date: &str, value: f64) -> Reading {
        Reading { date: date.into(), value }
    }

    #[test]
    fn draws_a_described_line_inside_its_box() {
        let svg =
            sparkline("Heart rate", "/min", &[r("2026-01-01", 60.0), r("2026-02-01", 90.0), r("2026-03-01", 72.0)]);
        assert!(svg.contains("aria-label=\"Heart rate: 3 readings from 2026-01-01 to 2026-03-01, lowest 60 /min, highest 90 /min, latest 72 /min\""), "{svg}");
        assert!(!svg.contains("style"), "no inline style for the CSP to refuse");
        let points = svg.split("points=\"").nth(1).and_then(|s| s.split('"').next()).expect("points");
        for point in points.split(' ') {
            let (x, y) = point.split_once(',').expect("x,y");
            let (x, y): (f64, f64) = (x.parse().expect("x"), y.parse().expect("y"));
            assert!((0.0..=WIDTH).contains(&x) && (0.0..=HEIGHT).contains(&y), "{point}");
        }
        // The highest reading is drawn highest (smallest y).
        assert!(points.split(' ').nth(1).expect("second").ends_with(&format!("{PAD:.1}")), "{points}");
        assert_eq!(sparkline("Weight", "kg", &[r("2026-01-01", 80.0)]), "", "one reading is no trend");
        assert!(
            sparkline("Flat", "kg", &[r("a", 5.0), r("b", 5.0)]).contains("polyline"),
            "a flat line is still drawn"
        );
    }
}
