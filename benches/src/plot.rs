//! SVG plots of a run, per workload: throughput vs threads and aborts per commit vs threads.
//!
//! Drawn with plotters' SVG backend and its built-in text layout: SVG text is rendered by the
//! viewer, so no system fonts (and no freetype) are needed to write the files.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::report::CellResult;

/// One line of a plot: a structure's points `(threads, value)`.
type Line<'a> = (&'a str, Vec<(f64, f64)>);

/// Writes `DIR/<workload>-throughput.svg` (log scale) and `DIR/<workload>-aborts.svg` for every workload
/// in `cells` (the aborts plot only where some structure is an STM), creating `dir` if needed.
/// Returns the files written.
///
/// # Errors
///
/// A message if the directory or a file cannot be written.
///
/// # Examples
///
/// ```no_run
/// use commute_benches::{plot::write_svgs, report::CellResult};
///
/// let cells: Vec<CellResult> = Vec::new();
/// let files = write_svgs(&cells, std::path::Path::new("plots")).unwrap();
/// assert!(files.is_empty());
/// ```
pub fn write_svgs(cells: &[CellResult], dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut workloads: Vec<&str> = Vec::new();
    for cell in cells {
        if !workloads.contains(&cell.workload) {
            workloads.push(cell.workload);
        }
    }
    let mut written = Vec::new();
    for workload in workloads {
        let mut structures: Vec<&str> = Vec::new();
        for cell in cells.iter().filter(|c| c.workload == workload) {
            if !structures.contains(&cell.structure) {
                structures.push(cell.structure);
            }
        }
        let line = |structure: &'static str,
                    value: &dyn Fn(&CellResult) -> Option<f64>|
         -> Line<'static> {
            let mut points: Vec<(f64, f64)> = cells
                .iter()
                .filter(|c| c.workload == workload && c.structure == structure)
                .filter_map(|c| value(c).map(|v| (c.threads as f64, v)))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            (structure, points)
        };
        let throughput: Vec<Line<'_>> = structures
            .iter()
            .map(|s| line(s, &|c| Some(c.ops_per_sec() / 1e6)))
            .collect();
        let path = dir.join(format!("{workload}-throughput.svg"));
        draw(
            &path,
            &format!("{workload}: throughput"),
            "million ops/s (log scale)",
            &throughput,
            Scale::Log,
        )?;
        written.push(path);
        let aborts: Vec<Line<'_>> = structures
            .iter()
            .map(|s| line(s, &CellResult::aborts_per_commit))
            .filter(|(_, points)| !points.is_empty())
            .collect();
        if !aborts.is_empty() {
            let path = dir.join(format!("{workload}-aborts.svg"));
            draw(
                &path,
                &format!("{workload}: aborts per commit"),
                "aborts per commit",
                &aborts,
                Scale::Linear,
            )?;
            written.push(path);
        }
    }
    Ok(written)
}

/// The y axis of a plot.
#[derive(Clone, Copy, PartialEq)]
enum Scale {
    Linear,
    Log,
}

fn draw(
    path: &Path,
    title: &str,
    y_desc: &str,
    lines: &[Line<'_>],
    scale: Scale,
) -> Result<(), String> {
    let failed = |e: &dyn std::fmt::Display| format!("cannot draw {}: {e}", path.display());
    let points = || lines.iter().flat_map(|(_, p)| p.iter());
    let x_min = points().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let x_max = points().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let y_max = points().map(|p| p.1).fold(0.0, f64::max);
    let y_min_positive = points()
        .map(|p| p.1)
        .filter(|&y| y > 0.0)
        .fold(f64::INFINITY, f64::min);
    let (x_min, x_max) = if x_min.is_finite() {
        (x_min, x_max)
    } else {
        (1.0, 1.0)
    };
    let (x_lo, x_hi) = if x_max > x_min {
        (x_min, x_max)
    } else {
        (x_min - 1.0, x_max + 1.0)
    };
    // Thread counts are integers: label only the integer ticks.
    let x_format = |x: &f64| {
        if (x - x.round()).abs() < 1e-9 {
            format!("{x:.0}")
        } else {
            String::new()
        }
    };

    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| failed(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70);
    if scale == Scale::Log {
        let (y_lo, y_hi) = if y_min_positive.is_finite() {
            (y_min_positive / 2.0, y_max * 2.0)
        } else {
            (0.1, 10.0)
        };
        let mut chart = builder
            .build_cartesian_2d(x_lo..x_hi, (y_lo..y_hi).log_scale())
            .map_err(|e| failed(&e))?;
        chart
            .configure_mesh()
            .x_desc("threads")
            .y_desc(y_desc)
            .x_label_formatter(&x_format)
            .draw()
            .map_err(|e| failed(&e))?;
        series(&mut chart, lines).map_err(|e| failed(&e))?;
    } else {
        let y_hi = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
        let mut chart = builder
            .build_cartesian_2d(x_lo..x_hi, 0.0..y_hi)
            .map_err(|e| failed(&e))?;
        chart
            .configure_mesh()
            .x_desc("threads")
            .y_desc(y_desc)
            .x_label_formatter(&x_format)
            .draw()
            .map_err(|e| failed(&e))?;
        series(&mut chart, lines).map_err(|e| failed(&e))?;
    }
    root.present().map_err(|e| failed(&e))?;
    Ok(())
}

/// Draws one line (with a dot per measured point) per structure, and the legend.
fn series<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    lines: &[Line<'_>],
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (i, (name, points)) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}
