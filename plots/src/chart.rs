//! Result charts: accuracy against a cost (one point per model with its 95% interval, the
//! cost axis linear or log-scaled) and curves (learning curves, accuracy by supervision step),
//! drawn with plotters' SVG backend. Text uses "DejaVu Sans", which `png` embeds, so the PNG
//! looks like the SVG everywhere.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub(crate) const FONT: &str = "DejaVu Sans";
const W: u32 = 820;
const H: u32 = 500;
/// Title and subtitle above the plot; legend right of it.
const TOP: u32 = 64;
const RIGHT: u32 = 190;

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

    /// The coordinate plotters draws at: log10 of the value on a log axis, so both kinds
    /// share one linear coordinate system and our own decade ticks.
    fn at(&self, v: f64) -> f64 {
        if self.log {
            v.max(self.lo).log10()
        } else {
            v
        }
    }

    fn range(&self) -> Ticked {
        Ticked {
            inner: (self.at(self.lo)..self.at(self.hi)).into(),
            ticks: self.ticks().into_iter().map(|(v, _)| self.at(v)).collect(),
        }
    }

    /// A tick's own label: 10^log10(5e12) is not exactly 5e12, and would print "5.00T".
    fn label(&self, coordinate: f64) -> String {
        self.ticks()
            .into_iter()
            .find(|(v, _)| (self.at(*v) - coordinate).abs() < 1e-9)
            .map(|(_, label)| label)
            .unwrap_or_else(|| human(coordinate))
    }
}

/// A linear coordinate whose grid lines and labels sit at our ticks, not plotters' own.
struct Ticked {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
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

pub(crate) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Ticked, Ticked>>;

/// `#RRGGBB` to a colour; anything else draws black rather than failing a report.
pub(crate) fn rgb(hex: &str) -> RGBColor {
    let channel = |i: usize| {
        hex.get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0)
    };
    match hex.len() {
        7 if hex.starts_with('#') => RGBColor(channel(1), channel(3), channel(5)),
        _ => BLACK,
    }
}

/// Text in pixels of the final SVG (plotters writes `font-size` as size / 1.24).
pub(crate) fn font(size: f64) -> TextStyle<'static> {
    TextStyle::from((FONT, size * 1.24).into_font())
}

pub(crate) fn draw_error(e: impl std::fmt::Display) -> String {
    format!("drawing a chart: {e}")
}

/// An SVG document of `W` x `H` drawn by `draw` on a white page.
fn svg_page(draw: impl FnOnce(&Area) -> Result<(), String>) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        draw(&root)?;
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

/// The title and up to two subtitle lines over the top band; returns the plot area and the
/// legend column right of it.
fn frame<'a>(root: &Area<'a>, title: &str, subtitle: &str) -> Result<(Area<'a>, Area<'a>), String> {
    let centre = Pos::new(HPos::Center, VPos::Bottom);
    let mid = (W / 2) as i32;
    root.draw(&Text::new(
        title.to_string(),
        (mid, 26),
        TextStyle::from((FONT, 17.0 * 1.24, FontStyle::Bold).into_font()).pos(centre),
    ))
    .map_err(draw_error)?;
    for (i, line) in subtitle.lines().take(2).enumerate() {
        root.draw(&Text::new(
            line.to_string(),
            (mid, 43 + 15 * i as i32),
            font(11.5).color(&RGBColor(0x44, 0x44, 0x44)).pos(centre),
        ))
        .map_err(draw_error)?;
    }
    let (_, body) = root.split_vertically(TOP);
    Ok(body.split_horizontally(W - RIGHT))
}

/// Axes with light grid lines at our ticks, labelled in short numbers (percent on y).
fn axes<'a, 'b>(
    area: &'a Area<'b>,
    x: &Axis,
    y: &Axis,
    x_label: &str,
    y_label: &str,
) -> Result<Chart<'a, 'b>, String> {
    let mut chart = ChartBuilder::on(area)
        .margin_right(8)
        .margin_top(8)
        .x_label_area_size(46)
        .y_label_area_size(62)
        .build_cartesian_2d(x.range(), y.range())
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .bold_line_style(RGBColor(0xe3, 0xe3, 0xe3))
        .light_line_style(TRANSPARENT)
        .axis_style(RGBColor(0x33, 0x33, 0x33))
        .label_style(font(12.0))
        .axis_desc_style(font(13.0))
        .x_label_formatter(&|v| x.label(*v))
        .y_label_formatter(&|v| y.label(*v))
        .x_desc(x_label)
        .y_desc(y_label)
        .draw()
        .map_err(draw_error)?;
    Ok(chart)
}

/// One dot and label per entry, in the column right of the plot.
fn legend(area: &Area, entries: &[(&str, &str)]) -> Result<(), String> {
    for (i, (label, colour)) in entries.iter().enumerate() {
        let y = 22 + 22 * i as i32;
        area.draw(&Circle::new((14, y), 5, rgb(colour).filled()))
            .map_err(draw_error)?;
        area.draw(&Text::new(
            label.to_string(),
            (24, y),
            font(12.0).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(draw_error)?;
    }
    Ok(())
}

/// Accuracy (y, in percent) against a cost (x), one point per model with its interval.
pub fn cost_chart_svg(
    title: &str,
    subtitle: &str,
    x_label: &str,
    y_label: &str,
    log_x: bool,
    points: &[Point],
) -> Result<String, String> {
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
) -> Result<String, String> {
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
) -> Result<String, String> {
    let [title, subtitle, x_label, y_label] = labels;
    let xs: Vec<f64> = points.iter().map(|p| p.x).collect();
    let x = Axis::fit(&xs, log_x);
    let y = percent_axis(points.iter().map(|p| p.high));
    svg_page(|root| {
        let (plot, side) = frame(root, title, subtitle)?;
        let mut chart = axes(&plot, &x, &y, x_label, y_label)?;
        for c in lines {
            let style = rgb(&c.colour).mix(0.7).stroke_width(3);
            let line = c.points.iter().map(|p| (x.at(p.0), 100.0 * p.1));
            chart
                .draw_series(LineSeries::new(line, style))
                .map_err(draw_error)?;
        }
        draw_points(&mut chart, &x, points, font_size)?;
        legend(&side, entries)
    })
}

/// Dots with interval bars and labels.
fn draw_points(
    chart: &mut Chart,
    x: &Axis,
    points: &[Point],
    font_size: f64,
) -> Result<(), String> {
    let at = |p: &Point, v: f64| (x.at(p.x), 100.0 * v);
    let pixel: Vec<(i32, i32)> = points
        .iter()
        .map(|p| chart.backend_coord(&at(p, p.y)))
        .collect();
    // The plot's pixel rows: labels stay between them, off the axis' tick labels.
    let (_, top) = chart.backend_coord(&(0.0, chart.y_range().end));
    let (_, bottom) = chart.backend_coord(&(0.0, chart.y_range().start));
    let offsets = label_offsets(&pixel, (top, bottom), points, font_size);
    for (i, p) in points.iter().enumerate() {
        let style = rgb(&p.colour);
        let label_dy = offsets[i];
        chart
            .draw_series([ErrorBar::new_vertical(
                x.at(p.x),
                100.0 * p.low,
                100.0 * p.y,
                100.0 * p.high,
                style.stroke_width(2),
                12,
            )])
            .map_err(draw_error)?;
        let dot = EmptyElement::at(at(p, p.y))
            + Circle::new((0, 0), 6, style.filled())
            + Text::new(
                p.label.clone(),
                (10, label_dy),
                font(font_size)
                    .color(&style)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            );
        chart.draw_series([dot]).map_err(draw_error)?;
    }
    Ok(())
}

/// Each label's vertical offset from its dot: level with it where it fits, else the nearest
/// of up to six lines above and below that overlaps no label placed before it (placed from the
/// top dot down), so crowded cells stay legible. Widths are estimated from the character
/// count, as an SVG writer cannot measure text.
fn label_offsets(
    pixel: &[(i32, i32)],
    (top, bottom): (i32, i32),
    points: &[Point],
    font_size: f64,
) -> Vec<i32> {
    let line = (1.1 * font_size).ceil() as i32;
    let width = |p: &Point| (0.6 * font_size * p.label.chars().count() as f64) as i32;
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by_key(|&i| (pixel[i].1, i));
    let mut placed: Vec<(i32, i32, i32, i32)> = Vec::new();
    let mut offsets = vec![0; points.len()];
    for i in order {
        let (x, y) = (pixel[i].0 + 10, pixel[i].1);
        let w = width(&points[i]);
        let overlaps = |dy: i32| {
            let (y0, y1) = (y + dy - line / 2, y + dy + line / 2);
            y0 < top
                || y1 > bottom
                || placed
                    .iter()
                    .any(|&(a0, b0, a1, b1)| x < a1 && a0 < x + w && y0 < b1 && b0 < y1)
        };
        let dy = (0..=12)
            .map(|k: i32| (k + 1) / 2 * if k % 2 == 1 { 1 } else { -1 } * line)
            .find(|&dy| !overlaps(dy))
            .unwrap_or(0);
        placed.push((x, y + dy - line / 2, x + w, y + dy + line / 2));
        offsets[i] = dy;
    }
    offsets
}

/// Accuracy (y, in percent) along x for each curve, with a shaded interval band.
pub fn curve_chart_svg(
    title: &str,
    subtitle: &str,
    x_label: &str,
    y_label: &str,
    log_x: bool,
    curves: &[Curve],
) -> Result<String, String> {
    let xs: Vec<f64> = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .collect();
    let x = Axis::fit(&xs, log_x);
    let y = percent_axis(curves.iter().flat_map(|c| c.points.iter().map(|p| p.3)));
    let entries: Vec<(&str, &str)> = curves
        .iter()
        .map(|c| (c.label.as_str(), c.colour.as_str()))
        .collect();
    svg_page(|root| {
        let (plot, side) = frame(root, title, subtitle)?;
        let mut chart = axes(&plot, &x, &y, x_label, y_label)?;
        for c in curves.iter().filter(|c| !c.points.is_empty()) {
            let colour = rgb(&c.colour);
            let band: Vec<(f64, f64)> = c
                .points
                .iter()
                .map(|p| (x.at(p.0), 100.0 * p.3))
                .chain(c.points.iter().rev().map(|p| (x.at(p.0), 100.0 * p.2)))
                .collect();
            chart
                .draw_series([Polygon::new(band, colour.mix(0.15).filled())])
                .map_err(draw_error)?;
            let line = c.points.iter().map(|p| (x.at(p.0), 100.0 * p.1));
            let style = colour.stroke_width(3);
            if c.dashed {
                chart.draw_series(DashedLineSeries::new(line.clone(), 7, 4, style))
            } else {
                chart.draw_series(LineSeries::new(line.clone(), style))
            }
            .map_err(draw_error)?;
            chart
                .draw_series(line.map(|p| Circle::new(p, 3, colour.filled())))
                .map_err(draw_error)?;
        }
        legend(&side, &entries)
    })
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
        assert!((a.at(1e13) - 13.0).abs() < 1e-12);
        assert_eq!(human(6_828_034.0), "6.83M");
        assert_eq!(human(2.5e15), "2.50P");
        assert_eq!(human(120.0), "120");
    }

    #[test]
    fn crowded_labels_are_spread_without_overlap_inside_the_plot() {
        let point = |label: &str| Point {
            label: label.into(),
            x: 1.0,
            y: 0.0,
            low: 0.0,
            high: 0.0,
            colour: PALETTE[0].into(),
        };
        let points: Vec<Point> = (0..4).map(|i| point(&format!("cell {i}"))).collect();
        // Four dots on one pixel near the bottom of a plot spanning rows 100 to 400.
        let pixel = vec![(50, 395); 4];
        let offsets = label_offsets(&pixel, (100, 400), &points, 10.0);
        let mut rows: Vec<i32> = offsets.iter().map(|dy| 395 + dy).collect();
        rows.sort();
        assert!(rows.windows(2).all(|w| w[1] - w[0] >= 11), "{rows:?}");
        assert!(
            rows.iter().all(|r| (100 + 5..=400 - 5).contains(r)),
            "{rows:?}"
        );
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
        )
        .unwrap();
        assert!(svg.contains("TRM &amp; co") && svg.contains(">\nHRM\n<"));
        assert!(svg.contains("acc &lt;vs&gt; params"));
        let png = crate::png::svg_to_png(&svg).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}
