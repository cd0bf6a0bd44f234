//! A profile as a table, one row per column, with a box plot of each numeric column drawn as
//! inline SVG (min, p25, median, p75, p95, max; presentation attributes only, so the strict
//! style policy holds).

use csv_profile::{ColumnProfile, ColumnType, Profile, Scalar};
use maud::{Markup, html};

use super::layout::human_bytes;

/// Width and height of a box plot, in SVG user units.
const PLOT_W: f64 = 160.0;
const PLOT_H: f64 = 24.0;

pub fn render(file_name: &str, profile: &Profile) -> Markup {
    let delimiter = match profile.delimiter.as_str() {
        "\t" => "tab".to_string(),
        other => format!("“{other}”"),
    };
    html! {
        p #profile-summary {
            (profile.rows) " rows, " (profile.columns) " columns, " (human_bytes(profile.bytes))
            "; delimiter " (delimiter) "; "
            @if profile.has_header { "with a header row" } @else { "no header row" }
            @if profile.bom { "; starts with a byte order mark" }
            "."
        }
        div .table-wrap role="region" aria-labelledby="profile-caption" tabindex="0" {
            table #profile-table {
                caption #profile-caption { "Columns of " (file_name) }
                thead { tr {
                    th scope="col" { "Column" }
                    th scope="col" { "Type" }
                    th scope="col" .num { "Values" }
                    th scope="col" .num { "Nulls" }
                    th scope="col" .num { "Distinct" }
                    th scope="col" .num { "Min" }
                    th scope="col" .num { "Max" }
                    th scope="col" .num { "Mean" }
                    th scope="col" .num { "Std dev" }
                    th scope="col" { "Distribution" }
                    th scope="col" .num { "p25" }
                    th scope="col" .num { "p50" }
                    th scope="col" .num { "p75" }
                    th scope="col" .num { "p95" }
                    th scope="col" .num { "Length" }
                } }
                tbody {
                    @for column in &profile.column_profiles { (row(column)) }
                }
            }
        }
        p .hint {
            "Distribution: the whiskers span min to max, the box p25 to p75, the bar is the "
            "median and the dot p95 (quantiles are estimates within 1 %)."
        }
    }
}

fn row(column: &ColumnProfile) -> Markup {
    let q = column.quantiles;
    html! {
        tr {
            th scope="row" { (column.name) }
            td { (type_name(column.column_type)) }
            td .num { (column.count) }
            td .num { (column.nulls) }
            td .num { (column.distinct) }
            td .num { (scalar(column.min.as_ref())) }
            td .num { (scalar(column.max.as_ref())) }
            td .num { (number(column.mean)) }
            td .num { (number(column.std_dev)) }
            td { (box_plot(column)) }
            td .num { (number(q.map(|q| q.p25))) }
            td .num { (number(q.map(|q| q.p50))) }
            td .num { (number(q.map(|q| q.p75))) }
            td .num { (number(q.map(|q| q.p95))) }
            td .num {
                @match (column.min_length, column.max_length) {
                    (Some(min), Some(max)) if min == max => { (min) }
                    (Some(min), Some(max)) => { (min) "–" (max) }
                    _ => { "–" }
                }
            }
        }
    }
}

fn type_name(kind: ColumnType) -> &'static str {
    match kind {
        ColumnType::Integer => "integer",
        ColumnType::Float => "float",
        ColumnType::Boolean => "boolean",
        ColumnType::DateTime => "date/time",
        ColumnType::String => "text",
        ColumnType::Empty => "empty",
    }
}

/// Longest text shown in a min/max cell; the rest is cut with an ellipsis.
const MAX_TEXT: usize = 40;

fn scalar(value: Option<&Scalar>) -> String {
    match value {
        None => "–".to_string(),
        Some(Scalar::Integer(i)) => i.to_string(),
        Some(Scalar::Float(f)) => format_number(*f),
        Some(Scalar::Boolean(b)) => b.to_string(),
        Some(Scalar::Text(text)) if text.chars().count() > MAX_TEXT => {
            let cut: String = text.chars().take(MAX_TEXT).collect();
            format!("{cut}…")
        }
        Some(Scalar::Text(text)) => text.clone(),
    }
}

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_string(), format_number)
}

/// Up to 4 decimals, without trailing zeros; integers as integers; huge or tiny in exponent form.
fn format_number(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-4..1e15).contains(&magnitude) {
        return format!("{value:.3e}");
    }
    let fixed = format!("{value:.4}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    if trimmed == "-0" {
        "0".to_string()
    } else {
        trimmed.to_string()
    }
}

/// The numbers a box plot needs, when the column has them all.
fn five_numbers(column: &ColumnProfile) -> Option<[f64; 6]> {
    let as_f64 = |s: &Option<Scalar>| match s {
        Some(Scalar::Integer(i)) => Some(*i as f64),
        Some(Scalar::Float(f)) => Some(*f),
        _ => None,
    };
    let q = column.quantiles?;
    let (min, max) = (as_f64(&column.min)?, as_f64(&column.max)?);
    let all = [min, q.p25, q.p50, q.p75, q.p95, max];
    all.iter().all(|v| v.is_finite()).then_some(all)
}

fn box_plot(column: &ColumnProfile) -> Markup {
    let Some([min, p25, p50, p75, p95, max]) = five_numbers(column) else {
        return html! { span .hint { "–" } };
    };
    let span = max - min;
    // Quantiles are estimates within 1 %: keep them inside [min, max] on the plot.
    let pos = |v: f64| {
        let t = if span > 0.0 {
            ((v - min) / span).clamp(0.0, 1.0)
        } else {
            0.5
        };
        2.0 + t * (PLOT_W - 4.0)
    };
    let at = |v: f64| format!("{:.1}", pos(v));
    let mid = PLOT_H / 2.0;
    let label = format!(
        "Box plot of {}: min {}, p25 {}, median {}, p75 {}, p95 {}, max {}",
        column.name,
        format_number(min),
        format_number(p25),
        format_number(p50),
        format_number(p75),
        format_number(p95),
        format_number(max)
    );
    let box_width = format!("{:.1}", (pos(p75) - pos(p25)).max(1.0));
    html! {
        svg .box-plot role="img" aria-label=(label) width=(PLOT_W) height=(PLOT_H)
            viewBox={ "0 0 " (PLOT_W) " " (PLOT_H) } xmlns="http://www.w3.org/2000/svg" {
            title { (label) }
            line x1=(at(min)) x2=(at(max)) y1=(mid) y2=(mid) stroke="#5b6b7f" stroke-width="1.5" {}
            line x1=(at(min)) x2=(at(min)) y1="6" y2="18" stroke="#5b6b7f" stroke-width="1.5" {}
            line x1=(at(max)) x2=(at(max)) y1="6" y2="18" stroke="#5b6b7f" stroke-width="1.5" {}
            rect x=(at(p25)) y="3" width=(box_width) height="18" fill="#9cc3e6" stroke="#1f5f99"
                stroke-width="1.5" {}
            line x1=(at(p50)) x2=(at(p50)) y1="3" y2="21" stroke="#0b2e4f" stroke-width="2.5" {}
            circle cx=(at(p95)) cy=(mid) r="2.5" fill="#c2410c" {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short() {
        assert_eq!(format_number(3.0), "3");
        assert_eq!(format_number(2.5), "2.5");
        assert_eq!(format_number(1.0 / 3.0), "0.3333");
        assert_eq!(format_number(-0.00001), "-1.000e-5");
        assert_eq!(format_number(0.0), "0");
        assert_eq!(format_number(-0.00004), "-4.000e-5");
    }
}
