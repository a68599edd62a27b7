//! The size/quality trade-off as a picture: file size (GiB, or MiB for files under a GiB)
//! against mean KL divergence (log scale) for every measured file, the Pareto front (no other file is both smaller and
//! better) drawn through its points, and the RAM budget as a vertical line.

use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;

/// One measured file.
#[derive(Clone, Debug)]
pub struct Point {
    pub label: String,
    pub bytes: u64,
    pub kld: f64,
}

/// The points on the Pareto front, smallest first: each has a lower KLD than every smaller one.
pub fn pareto_front(points: &[Point]) -> Vec<&Point> {
    let mut sorted: Vec<&Point> = points.iter().filter(|p| p.kld > 0.0).collect();
    sorted.sort_by(|a, b| a.bytes.cmp(&b.bytes).then(a.kld.total_cmp(&b.kld)));
    let mut front: Vec<&Point> = Vec::new();
    for p in sorted {
        if front.last().is_none_or(|best| p.kld < best.kld) {
            front.push(p);
        }
    }
    front
}

/// Draw `points` (and `budget`, bytes of RAM for the file, if given) to an SVG file at `path`.
pub fn size_quality_svg(
    path: &Path,
    title: &str,
    points: &[Point],
    budget: Option<u64>,
) -> Result<()> {
    let drawable: Vec<&Point> = points.iter().filter(|p| p.kld > 0.0).collect();
    if drawable.is_empty() {
        return Err(Error::Usage(
            "nothing to plot: no file with a positive KLD was measured".into(),
        ));
    }
    let largest = drawable
        .iter()
        .map(|p| p.bytes)
        .chain(budget)
        .max()
        .unwrap_or(0);
    let (unit, name) = if largest >= 1 << 30 {
        ((1u64 << 30) as f64, "GiB")
    } else {
        ((1u64 << 20) as f64, "MiB")
    };
    let gib = |b: u64| b as f64 / unit;
    let (mut x_min, mut x_max) = drawable.iter().fold((f64::MAX, 0f64), |(lo, hi), p| {
        (lo.min(gib(p.bytes)), hi.max(gib(p.bytes)))
    });
    if let Some(b) = budget {
        x_min = x_min.min(gib(b));
        x_max = x_max.max(gib(b));
    }
    let pad = (x_max - x_min).max(x_max * 0.05) * 0.08;
    let (k_min, k_max) = drawable.iter().fold((f64::MAX, 0f64), |(lo, hi), p| {
        (lo.min(p.kld), hi.max(p.kld))
    });
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(20)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (x_min - pad).max(0.0)..x_max + pad,
                (k_min / 2.0..k_max * 2.0).log_scale(),
            )?;
        chart
            .configure_mesh()
            .x_desc(format!("file size ({name})"))
            .y_desc("mean KL divergence vs F32 (log)")
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .draw()?;
        let front: Vec<(f64, f64)> = pareto_front(points)
            .iter()
            .map(|p| (gib(p.bytes), p.kld))
            .collect();
        chart
            .draw_series(LineSeries::new(front, BLUE.stroke_width(2)))?
            .label("Pareto front")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        // Labels above and below in turn, by size, so that neighbours do not overlap.
        let mut by_size = drawable.clone();
        by_size.sort_by_key(|p| p.bytes);
        chart.draw_series(by_size.iter().enumerate().map(|(i, p)| {
            let dy = if i % 2 == 0 { -16 } else { 6 };
            EmptyElement::at((gib(p.bytes), p.kld))
                + Circle::new((0, 0), 4, BLACK.filled())
                + Text::new(p.label.clone(), (6, dy), ("sans-serif", 13))
        }))?;
        if let Some(b) = budget {
            let x = gib(b);
            chart
                .draw_series(LineSeries::new(
                    [(x, k_min / 2.0), (x, k_max * 2.0)],
                    RED.stroke_width(2),
                ))?
                .label(format!("RAM budget for the file ({x:.2} {name})"))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| Error::file(path, format!("cannot draw the plot: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(label: &str, bytes: u64, kld: f64) -> Point {
        Point {
            label: label.into(),
            bytes,
            kld,
        }
    }

    #[test]
    fn the_front_keeps_points_no_smaller_file_beats() {
        let points = [
            p("a", 10, 0.5),
            p("b", 20, 0.6),
            p("c", 30, 0.1),
            p("d", 40, 0.1),
            p("e", 50, 0.0),
        ];
        let front: Vec<&str> = pareto_front(&points)
            .iter()
            .map(|p| p.label.as_str())
            .collect();
        assert_eq!(front, ["a", "c"]);
    }
}
