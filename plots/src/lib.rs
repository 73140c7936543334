//! Charts as self-contained SVG text, which embeds directly in an HTML report, and PNG
//! renderings of them with a compiled-in font.

pub mod chart;
pub mod png;

/// One data series of a histogram.
pub struct Series<'a> {
    pub name: &'a str,
    pub values: &'a [f64],
    /// CSS colour.
    pub colour: &'a str,
}

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Overlaid histograms with shared bins, each series normalised to percentages so that
/// splits of different sizes compare. The legend gives each series' count and mean.
pub fn histogram_svg(title: &str, x_label: &str, series: &[Series], bins: usize) -> String {
    let all = series.iter().flat_map(|s| s.values.iter().copied());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (lo, hi) = if lo.is_finite() {
        (lo, if hi > lo { hi } else { lo + 1.0 })
    } else {
        (0.0, 1.0)
    };
    let bins = bins.max(1);
    let width = (hi - lo) / bins as f64;
    let shares: Vec<Vec<f64>> = series
        .iter()
        .map(|s| {
            let mut counts = vec![0usize; bins];
            for &v in s.values {
                counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
            }
            counts
                .iter()
                .map(|&c| 100.0 * c as f64 / s.values.len().max(1) as f64)
                .collect()
        })
        .collect();
    let top = shares.iter().flatten().fold(1.0f64, |a, &b| a.max(b)) * 1.1;
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let x = |v: f64| LEFT + (v - lo) / (hi - lo) * plot_w;
    let y = |p: f64| TOP + plot_h - p / top * plot_h;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"28\" font-size=\"18\" text-anchor=\"middle\">{}</text>\n",
        WIDTH / 2.0,
        escape(title)
    );
    for k in 0..=5 {
        let p = top / 5.0 * k as f64;
        svg += &format!(
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{p:.0}%</text>\n",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y(p) + 4.0,
            y = y(p)
        );
    }
    for k in 0..=6 {
        let v = lo + (hi - lo) * k as f64 / 6.0;
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{}</text>\n",
            x(v),
            TOP + plot_h + 18.0,
            if hi - lo >= 12.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        );
    }
    let bar = plot_w / bins as f64 / series.len().max(1) as f64;
    for (i, (s, share)) in series.iter().zip(&shares).enumerate() {
        for (b, &p) in share.iter().enumerate() {
            if p > 0.0 {
                svg += &format!(
                    "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"{}\" fill-opacity=\"0.85\"/>\n",
                    LEFT + b as f64 * plot_w / bins as f64 + i as f64 * bar,
                    y(p),
                    bar,
                    TOP + plot_h - y(p),
                    escape(s.colour)
                );
            }
        }
        let mean = s.values.iter().sum::<f64>() / s.values.len().max(1) as f64;
        svg += &format!(
            "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" font-size=\"13\">{} (n = {}, mean {mean:.2})</text>\n",
            WIDTH - RIGHT - 260.0,
            TOP + 8.0 + 20.0 * i as f64,
            escape(s.colour),
            WIDTH - RIGHT - 242.0,
            TOP + 18.0 + 20.0 * i as f64,
            escape(s.name),
            s.values.len()
        );
    }
    svg += &format!(
        "<line x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{b}\" stroke=\"black\"/><line x1=\"{LEFT}\" x2=\"{r}\" y1=\"{b}\" y2=\"{b}\" stroke=\"black\"/>\n\
         <text x=\"{}\" y=\"{}\" font-size=\"14\" text-anchor=\"middle\">{}</text>\n\
         <text x=\"18\" y=\"{}\" font-size=\"14\" text-anchor=\"middle\" transform=\"rotate(-90 18 {})\">share of split</text>\n</svg>\n",
        LEFT + plot_w / 2.0,
        HEIGHT - 14.0,
        escape(x_label),
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0,
        b = TOP + plot_h,
        r = WIDTH - RIGHT,
    );
    svg
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
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("ratings &lt;train &amp; test&gt;"));
        assert!(
            svg.contains("train (n = 4, mean 3.50)") && svg.contains("test (n = 1, mean 5.00)")
        );
        // Bins of width 2 from 1: train fills bins 0 (1, 2, 2) and 3 (9), test bin 2 (5).
        assert_eq!(svg.matches("fill=\"#1f77b4\" fill-opacity").count(), 2);
        assert_eq!(svg.matches("fill=\"#ff7f0e\" fill-opacity").count(), 1);
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
        .contains("n = 0"));
    }
}
