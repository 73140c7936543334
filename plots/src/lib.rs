//! Charts as self-contained SVG text (plotters' SVG backend), which embeds directly in an HTML report, and PNG
//! renderings of them with a compiled-in font.

pub mod chart;
pub mod png;

use chart::{draw_error, font, rgb, Area};
use plotters::coord::types::RangedCoordf64;

/// One data series of a histogram.
pub struct Series<'a> {
    pub name: &'a str,
    pub values: &'a [f64],
    /// CSS colour.
    pub colour: &'a str,
}

const WIDTH: u32 = 760;
const HEIGHT: u32 = 440;

/// Overlaid histograms with shared bins, each series normalised to percentages so that
/// splits of different sizes compare. The legend gives each series' count and mean.
pub fn histogram_svg(
    title: &str,
    x_label: &str,
    series: &[Series],
    bins: usize,
) -> Result<String, String> {
    use plotters::prelude::*;
    let bins = Bins::fit(series, bins);
    let shares: Vec<Vec<f64>> = series.iter().map(|s| bins.shares(s.values)).collect();
    let top = shares.iter().flatten().fold(1.0f64, |a, &b| a.max(b)) * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let mut chart = histogram_axes(&root, title, x_label, &bins, top)?;
        draw_bars(&mut chart, series, &shares, &bins)?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(font(13.0))
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

type HistogramChart<'a, 'b> = plotters::chart::ChartContext<
    'a,
    plotters::prelude::SVGBackend<'b>,
    plotters::coord::cartesian::Cartesian2d<RangedCoordf64, RangedCoordf64>,
>;

/// Equal-width bins over the range of every series' values, shared so that the series
/// compare bin by bin.
struct Bins {
    lo: f64,
    hi: f64,
    count: usize,
    width: f64,
}

impl Bins {
    fn fit(series: &[Series], count: usize) -> Self {
        let all = series.iter().flat_map(|s| s.values.iter().copied());
        let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        let (lo, hi) = if lo.is_finite() {
            (lo, if hi > lo { hi } else { lo + 1.0 })
        } else {
            (0.0, 1.0)
        };
        let count = count.max(1);
        Bins {
            lo,
            hi,
            count,
            width: (hi - lo) / count as f64,
        }
    }

    /// The percentage of `values` in each bin.
    fn shares(&self, values: &[f64]) -> Vec<f64> {
        let mut counts = vec![0usize; self.count];
        for &v in values {
            counts[(((v - self.lo) / self.width) as usize).min(self.count - 1)] += 1;
        }
        counts
            .iter()
            .map(|&c| 100.0 * c as f64 / values.len().max(1) as f64)
            .collect()
    }
}

/// The caption and the axes, percent on y, x labels with a decimal only over short ranges.
fn histogram_axes<'a, 'b>(
    root: &'a Area<'b>,
    title: &str,
    x_label: &str,
    bins: &Bins,
    top: f64,
) -> Result<HistogramChart<'a, 'b>, String> {
    use plotters::prelude::*;
    let (lo, hi) = (bins.lo, bins.hi);
    let mut chart = ChartBuilder::on(root)
        .caption(title, font(18.0))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(lo..hi, 0.0..top)
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .light_line_style(TRANSPARENT)
        .label_style(font(12.0))
        .axis_desc_style(font(14.0))
        .y_label_formatter(&|p| format!("{p:.0}%"))
        .x_label_formatter(&|v| {
            if hi - lo >= 12.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        })
        .x_desc(x_label)
        .y_desc("share of split")
        .draw()
        .map_err(draw_error)?;
    Ok(chart)
}

/// Series side by side within each bin, each with its legend entry.
fn draw_bars(
    chart: &mut HistogramChart,
    series: &[Series],
    shares: &[Vec<f64>],
    bins: &Bins,
) -> Result<(), String> {
    use plotters::prelude::*;
    let bar = bins.width / series.len().max(1) as f64;
    for (i, (s, share)) in series.iter().zip(shares).enumerate() {
        let colour = rgb(s.colour);
        let bars = share
            .iter()
            .enumerate()
            .filter(|(_, p)| **p > 0.0)
            .map(|(b, &p)| {
                let x0 = bins.lo + b as f64 * bins.width + i as f64 * bar;
                Rectangle::new([(x0, 0.0), (x0 + bar, p)], colour.mix(0.85).filled())
            });
        let mean = s.values.iter().sum::<f64>() / s.values.len().max(1) as f64;
        chart
            .draw_series(bars)
            .map_err(draw_error)?
            .label(format!(
                "{} (n = {}, mean {mean:.2})",
                s.name,
                s.values.len()
            ))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], colour.filled()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_legend_and_escaping() {
        let a = [1.0, 2.0, 2.0, 9.0];
        let b = [5.0];
        let svg = histogram_svg(
            "ratings <train & test>",
            "guesses",
            &[
                Series {
                    name: "train",
                    values: &a,
                    colour: "#1f77b4",
                },
                Series {
                    name: "test",
                    values: &b,
                    colour: "#ff7f0e",
                },
            ],
            4,
        )
        .unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("ratings &lt;train &amp; test&gt;"));
        let bars = |fill: &str| {
            svg.lines()
                .filter(|l| {
                    l.starts_with("<rect") && l.contains(fill) && l.contains("opacity=\"0.85\"")
                })
                .count()
        };
        assert!(
            svg.contains("train (n = 4, mean 3.50)") && svg.contains("test (n = 1, mean 5.00)")
        );
        // Bins of width 2 from 1: train fills bins 0 (1, 2, 2) and 3 (9), test bin 2 (5).
        assert_eq!(bars("fill=\"#1F77B4\""), 2);
        assert_eq!(bars("fill=\"#FF7F0E\""), 1);
        // An empty series still renders.
        assert!(histogram_svg(
            "empty",
            "x",
            &[Series {
                name: "none",
                values: &[],
                colour: "red"
            }],
            3
        )
        .unwrap()
        .contains("n = 0"));
    }
}
