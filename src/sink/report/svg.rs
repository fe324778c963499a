//! The HTML report's charts, drawn as inline SVG: horizontal bars, 100 % stacked bars and a
//! timeline. No script and no library: a chart is a few rectangles and labels whose lengths
//! are proportional to the values, coloured by CSS classes of the page (so print and screen
//! styles apply to them too).
//!
//! Every label is escaped here; callers pass plain text.

use super::html::escape;
use std::fmt::Write;

/// Width of a bar at its largest, in SVG user units.
pub const BAR_AREA: f64 = 300.0;
/// Height of one bar's row.
const ROW: f64 = 18.0;
/// Room for the value printed after a bar.
const VALUE_ROOM: f64 = 110.0;
/// Roughly how wide one character of the 11-unit label font is.
const CHAR: f64 = 7.2;

/// One bar: its label, its value, the CSS class that colours it, and the text printed after
/// it (e.g. `12 (30.0 %)`).
#[derive(Clone, Debug)]
pub struct Bar<'a> {
    pub label: &'a str,
    pub value: f64,
    pub class: &'a str,
    pub text: String,
}

/// The length of a bar for `value` when `max` fills `full`: proportional, 0 for 0 (and for
/// anything that is not a positive finite number), `full` at `max`, never more.
pub fn length(value: f64, max: f64, full: f64) -> f64 {
    let drawable = max.is_finite() && max > 0.0 && value.is_finite() && value > 0.0;
    if !drawable {
        return 0.0;
    }
    (value / max).min(1.0) * full
}

/// Horizontal bars, one per row, scaled so that `max` fills [`BAR_AREA`] (pass 1 for shares,
/// the largest value for counts). `title` names the chart for screen readers.
pub fn bars(title: &str, bars: &[Bar<'_>], max: f64) -> String {
    let label_room = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .map_or(0.0, |n| (n as f64 * CHAR + 10.0).min(340.0));
    let width = label_room + BAR_AREA + VALUE_ROOM;
    let height = ROW * bars.len() as f64;
    let mut svg = open(title, width, height);
    for (i, b) in bars.iter().enumerate() {
        let y = ROW * i as f64;
        let w = length(b.value, max, BAR_AREA);
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect class=\"{}\" x=\"{label_room:.1}\" y=\"{:.1}\" width=\"{w:.2}\" height=\"{:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            label_room - 6.0,
            y + 13.0,
            escape(b.label),
            escape(b.class),
            y + 3.0,
            ROW - 6.0,
            label_room + w + 4.0,
            y + 13.0,
            escape(&b.text),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// One bar of `full` units split into parts by their shares of the parts' sum (a cell of the
/// protection table: protected, exposed, unknown). Each part carries a tooltip.
pub fn stacked(title: &str, parts: &[(f64, &str, String)], full: f64) -> String {
    let total: f64 = parts.iter().map(|p| p.0.max(0.0)).sum();
    let height = 14.0;
    let mut svg = open(title, full, height);
    let mut x = 0.0;
    for (value, class, tip) in parts {
        let w = length(*value, total, full);
        let _ = write!(
            svg,
            "<rect class=\"{}\" x=\"{x:.2}\" y=\"0\" width=\"{w:.2}\" height=\"{height}\">\
             <title>{}</title></rect>",
            escape(class),
            escape(tip)
        );
        x += w;
    }
    svg.push_str("</svg>");
    svg
}

/// One column of the timeline: its position (bucket number from the first), the counts of each
/// series stacked bottom up, and a tooltip.
#[derive(Clone, Debug)]
pub struct Column {
    pub slot: u64,
    pub counts: Vec<u64>,
    pub tip: String,
}

/// Stacked columns over `slots` positions (the capture's buckets, empty ones included), one
/// class per series; the tallest column fills the height. `first` and `last` label the axis.
pub fn timeline(
    title: &str,
    columns: &[Column],
    slots: u64,
    classes: &[&str],
    first: &str,
    last: &str,
) -> String {
    let (width, plot) = (720.0, 160.0);
    let height = plot + 30.0;
    let step = width / slots.max(1) as f64;
    let tallest = columns
        .iter()
        .map(|c| c.counts.iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    let mut svg = open(title, width, height);
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"0\" y1=\"{plot}\" x2=\"{width}\" y2=\"{plot}\"/>\
         <text x=\"0\" y=\"{:.1}\">{}</text>\
         <text x=\"{width}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
         <text x=\"2\" y=\"11\">{tallest} sessions</text>",
        plot + 16.0,
        escape(first),
        plot + 16.0,
        escape(last),
    );
    for c in columns {
        let x = step * c.slot as f64;
        let mut top = plot;
        let _ = write!(svg, "<g><title>{}</title>", escape(&c.tip));
        for (n, class) in c.counts.iter().zip(classes) {
            let h = length(*n as f64, tallest as f64, plot - 16.0);
            top -= h;
            let _ = write!(
                svg,
                "<rect class=\"{}\" x=\"{x:.2}\" y=\"{top:.2}\" width=\"{:.2}\" height=\"{h:.2}\"/>",
                escape(class),
                (step * 0.9).max(0.5)
            );
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");
    svg
}

fn open(title: &str, width: f64, height: f64) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width:.1} {height:.1}\" \
         width=\"{width:.0}\" height=\"{height:.0}\" role=\"img\" aria-label=\"{t}\">\
         <title>{t}</title>",
        t = escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `width` attribute of every `<rect>`, in order.
    fn widths(svg: &str) -> Vec<f64> {
        svg.split("<rect")
            .skip(1)
            .filter_map(|r| {
                let w = r.split("width=\"").nth(1)?.split('"').next()?;
                w.parse().ok()
            })
            .collect()
    }

    fn bar(value: f64) -> Bar<'static> {
        Bar {
            label: "x",
            value,
            class: "enc",
            text: String::new(),
        }
    }

    #[test]
    fn bars_are_proportional_zero_is_zero_and_the_largest_fills_the_width() {
        let svg = bars("t", &[bar(50.0), bar(0.0), bar(100.0), bar(25.0)], 100.0);
        assert_eq!(widths(&svg), [150.0, 0.0, 300.0, 75.0]);
    }

    #[test]
    fn shares_fill_the_width_at_one_hundred_percent() {
        let svg = bars("t", &[bar(1.0), bar(0.125), bar(0.0)], 1.0);
        assert_eq!(widths(&svg), [BAR_AREA, BAR_AREA / 8.0, 0.0]);
    }

    #[test]
    fn length_never_exceeds_the_full_width_nor_goes_negative() {
        assert_eq!(length(3.0, 2.0, 10.0), 10.0);
        assert_eq!(length(-1.0, 2.0, 10.0), 0.0);
        assert_eq!(length(f64::NAN, 2.0, 10.0), 0.0);
        assert_eq!(length(1.0, 0.0, 10.0), 0.0);
        assert_eq!(length(0.0, 0.0, 10.0), 0.0);
    }

    #[test]
    fn stacked_parts_add_up_to_the_full_width() {
        let parts = [
            (3.0, "protected", "3".to_string()),
            (0.0, "exposed", "0".to_string()),
            (1.0, "unknown", "1".to_string()),
        ];
        let svg = stacked("cell", &parts, 200.0);
        assert_eq!(widths(&svg), [150.0, 0.0, 50.0]);
        // Each part starts where the one before it ends.
        assert!(svg.contains("x=\"150.00\" y=\"0\" width=\"0.00\""), "{svg}");
        assert!(
            svg.contains("x=\"150.00\" y=\"0\" width=\"50.00\""),
            "{svg}"
        );
    }

    #[test]
    fn timeline_columns_are_as_tall_as_their_counts() {
        let columns = [
            Column {
                slot: 0,
                counts: vec![2, 2],
                tip: "a".into(),
            },
            Column {
                slot: 3,
                counts: vec![0, 1],
                tip: "b".into(),
            },
        ];
        let svg = timeline("t", &columns, 4, &["p", "e"], "start", "end");
        let heights: Vec<f64> = svg
            .split("<rect")
            .skip(1)
            .filter_map(|r| r.split("height=\"").nth(1)?.split('"').next()?.parse().ok())
            .collect();
        // The tallest column (4) fills 144 units; 2 is half, 1 a quarter, 0 nothing.
        assert_eq!(heights, [72.0, 72.0, 0.0, 36.0]);
        // Slot 3 of 4 starts three quarters along the 720-unit axis.
        assert!(svg.contains("x=\"540.00\""), "{svg}");
    }

    #[test]
    fn labels_are_escaped() {
        let b = Bar {
            label: "<script>",
            value: 1.0,
            class: "enc",
            text: "a&b".into(),
        };
        let svg = bars("t<", &[b], 1.0);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;") && svg.contains("a&amp;b"));
    }
}
