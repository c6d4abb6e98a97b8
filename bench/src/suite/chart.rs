//! PNG line charts of the scaling curves (plotters, bitmap backend; text
//! drawn with ab_glyph from a system TrueType font).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context as _, anyhow, bail};
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::prelude::*;

/// One line of a chart: (x, y) points in x order.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

impl Series {
    pub fn new(name: &str, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.to_owned(),
            points,
            dashed: false,
        }
    }

    pub fn dashed(mut self) -> Series {
        self.dashed = true;
        self
    }
}

/// A chart with a logarithmic x axis (stores or nodes: 10 to 10,000).
#[derive(Debug, Clone)]
pub struct Chart {
    /// File name inside the chart directory.
    pub file: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_y: bool,
    pub series: Vec<Series>,
    /// A horizontal budget line: its label and y value.
    pub budget: Option<(String, f64)>,
}

const COLORS: [RGBColor; 4] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x55, 0x55, 0x55),
    RGBColor(0x2c, 0xa0, 0x2c),
];
const BUDGET_COLOR: RGBColor = RGBColor(0xe6, 0x7e, 0x22);

/// Where a sans-serif TrueType font is on common Linux systems; the
/// environment variable `FLEET_BENCH_FONT` names another.
const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

fn register_font() -> anyhow::Result<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let candidates: Vec<PathBuf> = std::env::var_os("FLEET_BENCH_FONT")
            .map(PathBuf::from)
            .into_iter()
            .chain(FONT_PATHS.iter().map(PathBuf::from))
            .collect();
        let (path, bytes) = candidates
            .iter()
            .find_map(|p| std::fs::read(p).ok().map(|b| (p, b)))
            .ok_or_else(|| {
                format!(
                    "no TrueType font for the charts: install fonts-dejavu-core or set FLEET_BENCH_FONT (looked in {})",
                    FONT_PATHS.join(", ")
                )
            })?;
        // plotters keeps fonts for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| format!("{} is not a font plotters can read", path.display()))
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

impl Chart {
    /// Draw into `dir/file` (800 × 500 pixels).
    pub fn draw(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        register_font()?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(&self.file);
        let xs = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0));
        let ys = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .chain(self.budget.iter().map(|b| b.1));
        let (x_lo, x_hi) = bounds(xs).context("a chart without points")?;
        let (y_lo, y_hi) = bounds(ys).context("a chart without points")?;
        if x_lo.is_nan() || x_lo <= 0.0 {
            bail!("the x axis is logarithmic and needs positive values");
        }
        let x = (x_lo / 1.5..x_hi * 1.5).log_scale();
        let root = BitMapBackend::new(&path, (800, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        if self.log_y {
            let lo = if y_lo > 0.0 { y_lo / 2.0 } else { 1e-3 };
            self.plot(&root, x, (lo..y_hi * 2.0).log_scale())?;
        } else {
            // Head room above the data for the legend (upper left).
            self.plot(&root, x, 0.0..y_hi * 1.6)?;
        }
        root.present().map_err(draw_error)?;
        drop(root);
        Ok(path)
    }

    fn plot<X, Y>(
        &self,
        root: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
        x: X,
        y: Y,
    ) -> anyhow::Result<()>
    where
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
        Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(x, y)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .x_label_formatter(&|v| format_number(*v))
            .y_label_formatter(&|v| format_number(*v))
            .draw()
            .map_err(draw_error)?;
        for (i, s) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let style = color.stroke_width(if s.dashed { 1 } else { 3 });
            let drawn = if s.dashed {
                chart.draw_series(DashedLineSeries::new(s.points.iter().copied(), 8, 6, style))
            } else {
                chart.draw_series(LineSeries::new(s.points.iter().copied(), style))
            }
            .map_err(draw_error)?;
            drawn.label(&s.name).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
            if !s.dashed {
                chart
                    .draw_series(s.points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                    .map_err(draw_error)?;
            }
        }
        if let Some((label, value)) = &self.budget {
            let (x0, x1) = {
                let r = chart.x_range();
                (r.start, r.end)
            };
            chart
                .draw_series(DashedLineSeries::new(
                    [(x0, *value), (x1, *value)],
                    10,
                    6,
                    BUDGET_COLOR.stroke_width(2),
                ))
                .map_err(draw_error)?
                .label(label.as_str())
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], BUDGET_COLOR.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(draw_error)?;
        Ok(())
    }
}

fn draw_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing a chart: {e}")
}

fn bounds(v: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    v.filter(|x| x.is_finite()).fold(None, |acc, x| match acc {
        None => Some((x, x)),
        Some((lo, hi)) => Some((lo.min(x), hi.max(x))),
    })
}

/// Axis labels: 10, 100, 1,000, 10,000; 0.5; 2.5k.
fn format_number(v: f64) -> String {
    if v >= 1000.0 && v.fract() == 0.0 {
        super::thousands(v as usize)
    } else if v >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_png_with_log_and_linear_axes() {
        let dir = tempfile::tempdir().expect("tempdir");
        for log_y in [true, false] {
            let chart = Chart {
                file: format!("t-{log_y}.png"),
                title: "t".into(),
                x_label: "stores".into(),
                y_label: "s".into(),
                log_y,
                series: vec![
                    Series::new("a", vec![(10.0, 0.01), (10_000.0, 1.6)]),
                    Series::new("b", vec![(10.0, 1.0), (10_000.0, 50.0)]).dashed(),
                ],
                budget: Some(("budget".into(), 10.0)),
            };
            let path = chart.draw(dir.path()).expect("draw");
            let bytes = std::fs::read(&path).expect("read png");
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
            // IHDR: width and height, big-endian, right after the signature.
            assert_eq!(&bytes[16..24], &[0, 0, 3, 32, 0, 0, 1, 244]);
        }
        let empty = Chart {
            file: "e.png".into(),
            title: "e".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_y: false,
            series: vec![Series::new("none", vec![])],
            budget: None,
        };
        let err = empty.draw(dir.path()).expect_err("no points");
        assert!(err.to_string().contains("without points"), "{err}");
    }

    #[test]
    fn numbers_on_axes() {
        assert_eq!(format_number(10.0), "10");
        assert_eq!(format_number(10000.0), "10,000");
        assert_eq!(format_number(2500.0), "2,500");
        assert_eq!(format_number(0.25), "0.25");
        assert_eq!(format_number(0.1), "0.1");
        assert_eq!(format_number(0.001), "0.001");
        assert_eq!(format_number(2.5), "2.5");
    }
}
