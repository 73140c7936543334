//! Result charts: accuracy against a cost (one point per model with its 95% interval, the
//! cost axis linear or log-scaled) and curves (learning curves, accuracy by supervision step).
//! Text uses "DejaVu Sans", which `png` embeds, so the PNG looks like the SVG everywhere.

use crate::escape;

const W: f64 = 820.0;
const H: f64 = 500.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 72.0;
const BOTTOM: f64 = 64.0;

/// Colours that stay apart for colour-blind readers (Okabe-Ito).
pub const PALETTE: [&str; 6] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
];

/// One model on an accuracy-against-cost chart.
pub struct Point {
    pub label: String,
    pub x: f64,
    /// Accuracy in [0, 1] with its interval.
    pub y: f64,
    pub low: f64,
    pub high: f64,
    pub colour: String,
}

/// One curve: points (x, accuracy, interval low, interval high).
pub struct Curve {
    pub label: String,
    pub points: Vec<(f64, f64, f64, f64)>,
    pub colour: String,
    /// Drawn dashed: a second curve of the same model (same colour).
    pub dashed: bool,
}

struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Axis {
    /// Axis bounds around `values`: whole decades when log-scaled, else from 0 (or the
    /// smallest value) to a little beyond the largest.
    fn fit(values: &[f64], log: bool) -> Self {
        let finite: Vec<f64> = values
            .iter()
            .copied()
            .filter(|v| v.is_finite() && (!log || *v > 0.0))
            .collect();
        let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() {
            return Axis {
                lo: if log { 1.0 } else { 0.0 },
                hi: if log { 10.0 } else { 1.0 },
                log,
            };
        }
        if log {
            let (a, mut b) = (lo.log10().floor(), hi.log10().ceil());
            if b <= a {
                b = a + 1.0;
            }
            Axis {
                lo: 10f64.powf(a),
                hi: 10f64.powf(b),
                log,
            }
        } else {
            let lo = if lo >= 0.0 { 0.0 } else { lo };
            let hi = if hi > lo { hi * 1.05 } else { lo + 1.0 };
            Axis { lo, hi, log }
        }
    }

    fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v.max(self.lo).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    /// Tick values with their labels.
    fn ticks(&self) -> Vec<(f64, String)> {
        if self.log {
            let (a, b) = (
                self.lo.log10().round() as i32,
                self.hi.log10().round() as i32,
            );
            // Few decades: 1-2-5 ticks, so a narrow range still reads.
            let mantissas: &[f64] = if b - a <= 2 { &[1.0, 2.0, 5.0] } else { &[1.0] };
            (a..=b)
                .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
                .filter(|v| *v <= self.hi * (1.0 + 1e-9))
                .map(|v| (v, human(v)))
                .collect()
        } else {
            let raw = (self.hi - self.lo) / 5.0;
            let mag = 10f64.powf(raw.log10().floor());
            let step = [1.0, 2.0, 2.5, 5.0, 10.0]
                .iter()
                .map(|m| m * mag)
                .find(|s| *s >= raw)
                .unwrap_or(raw);
            let mut out = Vec::new();
            let mut v = (self.lo / step).ceil() * step;
            while v <= self.hi + step * 1e-9 {
                out.push((v, human(v)));
                v += step;
            }
            out
        }
    }
}

/// 1234567 -> "1.23M": short labels for counts and FLOPs.
pub fn human(v: f64) -> String {
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e15 {
        (v / 1e15, "P")
    } else if a >= 1e12 {
        (v / 1e12, "T")
    } else if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let text = if scaled.fract().abs() < 1e-9 || scaled.abs() >= 100.0 {
        format!("{scaled:.0}")
    } else if scaled.abs() >= 10.0 {
        format!("{scaled:.1}")
    } else {
        format!("{scaled:.2}")
    };
    format!("{text}{suffix}")
}

/// The chart's frame; `subtitle` may hold several lines (`\n`).
fn frame(title: &str, subtitle: &str, x_label: &str, y_label: &str) -> String {
    let cx = LEFT + (W - LEFT - RIGHT) / 2.0;
    let cy = TOP + (H - TOP - BOTTOM) / 2.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"DejaVu Sans, sans-serif\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{c}\" y=\"24\" font-size=\"17\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>\n",
        escape(title),
        c = W / 2.0,
    );
    for (i, line) in subtitle.lines().take(2).enumerate() {
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" font-size=\"11.5\" text-anchor=\"middle\" fill=\"#444\">{}</text>\n",
            W / 2.0,
            42.0 + 15.0 * i as f64,
            escape(line)
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{cx}\" y=\"{}\" font-size=\"13\" text-anchor=\"middle\">{}</text>\n\
         <text x=\"18\" y=\"{cy}\" font-size=\"13\" text-anchor=\"middle\" transform=\"rotate(-90 18 {cy})\">{}</text>\n",
        H - 18.0,
        escape(x_label),
        escape(y_label),
    ));
    svg
}

fn axes(svg: &mut String, x: &Axis, y: &Axis) {
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    for (v, label) in y.ticks() {
        let py = TOP + ph - y.frac(v) * ph;
        svg.push_str(&format!(
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{py:.1}\" y2=\"{py:.1}\" stroke=\"#e3e3e3\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{label}</text>\n",
            LEFT + pw,
            LEFT - 6.0,
            py + 4.0
        ));
    }
    for (v, label) in x.ticks() {
        let px = LEFT + x.frac(v) * pw;
        svg.push_str(&format!(
            "<line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"#e3e3e3\"/><text x=\"{px:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\">{label}</text>\n",
            TOP + ph,
            TOP + ph + 18.0
        ));
    }
    svg.push_str(&format!(
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#333\"/>\n"
    ));
}

fn legend(svg: &mut String, entries: &[(&str, &str)]) {
    let x = W - RIGHT + 14.0;
    for (i, (label, colour)) in entries.iter().enumerate() {
        let y = TOP + 14.0 + 22.0 * i as f64;
        svg.push_str(&format!(
            "<circle cx=\"{x}\" cy=\"{y}\" r=\"5\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\">{}</text>\n",
            x + 10.0,
            y + 4.0,
            escape(label)
        ));
    }
}

/// Accuracy (y, in percent) against a cost (x), one point per model with its interval.
pub fn cost_chart_svg(
    title: &str,
    subtitle: &str,
    x_label: &str,
    y_label: &str,
    log_x: bool,
    points: &[Point],
) -> String {
    let entries: Vec<(&str, &str)> = points
        .iter()
        .map(|p| (p.label.as_str(), p.colour.as_str()))
        .collect();
    let labels = [title, subtitle, x_label, y_label];
    points_chart(labels, log_x, points, &[], 12.0, &entries)
}

/// Many cells on one accuracy-against-cost chart (log x), each a dot with its interval and a
/// small label, and each family's frontier as a line (the legend names the families).
pub fn frontier_chart_svg(
    title: &str,
    subtitle: &str,
    x_label: &str,
    y_label: &str,
    points: &[Point],
    frontiers: &[Curve],
) -> String {
    let entries: Vec<(&str, &str)> = frontiers
        .iter()
        .map(|c| (c.label.as_str(), c.colour.as_str()))
        .collect();
    let labels = [title, subtitle, x_label, y_label];
    points_chart(labels, true, points, frontiers, 10.0, &entries)
}

/// Dots with their intervals over lines through `lines`' points, on axes fitted to the dots;
/// `labels` are the title, subtitle and the two axis labels.
fn points_chart(
    labels: [&str; 4],
    log_x: bool,
    points: &[Point],
    lines: &[Curve],
    font_size: f64,
    entries: &[(&str, &str)],
) -> String {
    let [title, subtitle, x_label, y_label] = labels;
    let xs: Vec<f64> = points.iter().map(|p| p.x).collect();
    let x = Axis::fit(&xs, log_x);
    let y = percent_axis(points.iter().map(|p| p.high));
    let mut svg = frame(title, subtitle, x_label, y_label);
    axes(&mut svg, &x, &y);
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    for c in lines {
        let line: Vec<String> = c
            .points
            .iter()
            .map(|p| {
                format!(
                    "{:.1},{:.1}",
                    LEFT + x.frac(p.0) * pw,
                    TOP + ph - y.frac(100.0 * p.1) * ph
                )
            })
            .collect();
        svg.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2.5\" stroke-opacity=\"0.7\"/>\n",
            line.join(" "),
            c.colour
        ));
    }
    draw_points(&mut svg, &x, &y, points, font_size);
    legend(&mut svg, entries);
    svg.push_str("</svg>\n");
    svg
}

/// Dots with interval bars and labels.
fn draw_points(svg: &mut String, x: &Axis, y: &Axis, points: &[Point], font_size: f64) {
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let px_of = |p: &Point| LEFT + x.frac(p.x) * pw;
    let py = |v: f64| TOP + ph - y.frac(100.0 * v) * ph;
    for (i, p) in points.iter().enumerate() {
        let px = px_of(p);
        // A label sits right of its dot, level with it; nudged down or up when a dot close
        // by at nearly the same height is above or below, so no label reads as another's.
        let clash = points.iter().enumerate().find(|(j, q)| {
            *j != i && (px_of(q) - px).abs() < 120.0 && (py(q.y) - py(p.y)).abs() < 14.0
        });
        let label_dy = match clash {
            Some((j, q)) if (q.y, j) > (p.y, i) => 4.0 + 0.75 * font_size,
            Some(_) => 4.0 - 0.75 * font_size,
            None => 4.0,
        };
        svg.push_str(&format!(
            "<line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{c}\" stroke-width=\"2\"/>\
             <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{lo:.1}\" y2=\"{lo:.1}\" stroke=\"{c}\" stroke-width=\"2\"/>\
             <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{hi:.1}\" y2=\"{hi:.1}\" stroke=\"{c}\" stroke-width=\"2\"/>\
             <circle cx=\"{px:.1}\" cy=\"{:.1}\" r=\"6\" fill=\"{c}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{font_size}\" fill=\"{c}\">{}</text>\n",
            py(p.low),
            py(p.high),
            px - 6.0,
            px + 6.0,
            px - 6.0,
            px + 6.0,
            py(p.y),
            px + 10.0,
            py(p.y) + label_dy,
            escape(&p.label),
            lo = py(p.low),
            hi = py(p.high),
            c = p.colour
        ));
    }
}

/// Accuracy (y, in percent) along x for each curve, with a shaded interval band.
pub fn curve_chart_svg(
    title: &str,
    subtitle: &str,
    x_label: &str,
    y_label: &str,
    log_x: bool,
    curves: &[Curve],
) -> String {
    let xs: Vec<f64> = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .collect();
    let x = Axis::fit(&xs, log_x);
    let y = percent_axis(curves.iter().flat_map(|c| c.points.iter().map(|p| p.3)));
    let mut svg = frame(title, subtitle, x_label, y_label);
    axes(&mut svg, &x, &y);
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let px = |v: f64| LEFT + x.frac(v) * pw;
    let py = |v: f64| TOP + ph - y.frac(100.0 * v) * ph;
    for c in curves {
        if c.points.is_empty() {
            continue;
        }
        let upper: Vec<String> = c
            .points
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.3)))
            .collect();
        let lower: Vec<String> = c
            .points
            .iter()
            .rev()
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.2)))
            .collect();
        svg.push_str(&format!(
            "<polygon points=\"{} {}\" fill=\"{}\" fill-opacity=\"0.15\" stroke=\"none\"/>\n",
            upper.join(" "),
            lower.join(" "),
            c.colour
        ));
        let line: Vec<String> = c
            .points
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1)))
            .collect();
        svg.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2.5\"{}/>\n",
            line.join(" "),
            c.colour,
            if c.dashed {
                " stroke-dasharray=\"7 4\""
            } else {
                ""
            }
        ));
        for p in &c.points {
            svg.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{}\"/>\n",
                px(p.0),
                py(p.1),
                c.colour
            ));
        }
    }
    let entries: Vec<(&str, &str)> = curves
        .iter()
        .map(|c| (c.label.as_str(), c.colour.as_str()))
        .collect();
    legend(&mut svg, &entries);
    svg.push_str("</svg>\n");
    svg
}

/// 0 to a round percentage above the largest upper bound (at most 100).
fn percent_axis(highs: impl Iterator<Item = f64>) -> Axis {
    let top = highs.fold(0.0f64, |a, b| a.max(b)) * 100.0;
    let hi = [5.0, 10.0, 20.0, 25.0, 50.0, 75.0, 100.0]
        .into_iter()
        .find(|&h| h >= top * 1.05)
        .unwrap_or(100.0);
    Axis {
        lo: 0.0,
        hi,
        log: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axes_span_whole_decades_and_labels_are_short() {
        let a = Axis::fit(&[3e12, 4e14], true);
        assert_eq!((a.lo, a.hi), (1e12, 1e15));
        assert_eq!(a.ticks().len(), 4);
        let narrow = Axis::fit(&[2e8, 3e8], true);
        let labels: Vec<String> = narrow.ticks().into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["100M", "200M", "500M", "1G"]);
        assert!((a.frac(1e13) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(human(6_828_034.0), "6.83M");
        assert_eq!(human(2.5e15), "2.50P");
        assert_eq!(human(120.0), "120");
    }

    #[test]
    fn charts_name_every_model_and_escape_text() {
        let svg = cost_chart_svg(
            "acc <vs> params",
            "cpu preset",
            "parameters",
            "accuracy",
            true,
            &[
                Point {
                    label: "TRM & co".into(),
                    x: 7e6,
                    y: 0.4,
                    low: 0.3,
                    high: 0.5,
                    colour: PALETTE[0].into(),
                },
                Point {
                    label: "HRM".into(),
                    x: 2.7e7,
                    y: 0.2,
                    low: 0.1,
                    high: 0.3,
                    colour: PALETTE[1].into(),
                },
            ],
        );
        assert!(svg.contains("TRM &amp; co") && svg.contains(">HRM<"));
        assert!(svg.contains("acc &lt;vs&gt; params"));
        let png = crate::png::svg_to_png(&svg).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}
