//! Provides number formatting copied from pyperf (`_formatter.py`, `_compare.py`), so our tables
//! read exactly like theirs: times with three significant digits, sizes in
//! bytes/KiB/MiB, changes as `1.05x faster` / `1.05x slower`, overheads as `1.50x`.

const TIME_UNITS: [&str; 4] = ["sec", "ms", "us", "ns"];

/// pyperf's `format_timedelta`: three significant digits with `sec`, `ms`, `us` or `ns`.
pub fn format_timedelta(seconds: f64) -> String {
    let r = seconds.abs();
    let i = (-9..=2).rev().find(|&i| r >= 10f64.powi(i)).unwrap_or(-9);
    let precision = (2 - i.rem_euclid(3)) as usize;
    let k = if i < 0 {
        (-i.div_euclid(3)) as usize
    } else {
        0
    };
    let factor = 10f64.powi(3 * k as i32);
    // Rust's `{:.N}` and Python's `%.Nf` both round the exact binary value correctly, so they agree.
    format!("{:.*} {}", precision, seconds * factor, TIME_UNITS[k])
}

/// pyperf's `format_filesize`.
pub fn format_filesize(size: f64) -> String {
    if size < 10.0 * 1024.0 {
        if size == 1.0 {
            "1 byte".to_string()
        } else {
            format!("{size:.0} bytes")
        }
    } else if size > 10.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", size / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", size / 1024.0)
    }
}

/// pyperf's `format_values` for one value of the given unit (`second`, `byte`, `integer`).
pub fn format_value(unit: &str, value: f64) -> String {
    match unit {
        "byte" => format_filesize(value),
        "integer" => format!("{value}"),
        _ => format_timedelta(value),
    }
}

/// pyperf's `format_normalized_mean`: changed mean / reference mean as `no change`,
/// `1.25x faster` (of the inverse) or `1.25x slower`.
pub fn format_normalized_mean(norm_mean: f64) -> String {
    if norm_mean == 1.0 {
        "no change".to_string()
    } else if norm_mean < 1.0 {
        format!("{:.2}x faster", 1.0 / norm_mean)
    } else {
        format!("{norm_mean:.2}x slower")
    }
}

/// An overhead factor on an axis or in a table: `1.50x`.
pub fn format_factor(x: f64) -> String {
    format!("{x:.2}x")
}

/// A percentage with two decimals: `99.99%`.
pub fn format_percent(p: f64) -> String {
    format!("{:.2}%", p * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_like_pyperf() {
        // Examples from pyperf's own output (reference/001 and the fixture's compare_to output).
        assert_eq!(format_timedelta(0.288), "288 ms");
        assert_eq!(format_timedelta(1.93), "1.93 sec");
        assert_eq!(format_timedelta(25.4e-6), "25.4 us");
        assert_eq!(format_timedelta(2.64), "2.64 sec");
        assert_eq!(format_timedelta(9.99e-6), "9.99 us");
        assert_eq!(format_timedelta(25.6e-9), "25.6 ns");
        assert_eq!(format_timedelta(0.00141), "1.41 ms");
        assert_eq!(format_timedelta(105e-6), "105 us");
        assert_eq!(format_timedelta(12.5), "12.5 sec");
        assert_eq!(format_timedelta(125.0), "125 sec");
    }

    #[test]
    fn sizes_and_changes_like_pyperf() {
        assert_eq!(format_filesize(1.0), "1 byte");
        assert_eq!(format_filesize(512.0), "512 bytes");
        assert_eq!(format_filesize(20.0 * 1024.0), "20.0 KiB");
        assert_eq!(format_filesize(20.0 * 1024.0 * 1024.0), "20.0 MiB");
        assert_eq!(format_normalized_mean(1.0), "no change");
        assert_eq!(format_normalized_mean(0.8), "1.25x faster");
        assert_eq!(format_normalized_mean(5.3), "5.30x slower");
        assert_eq!(format_factor(1.5), "1.50x");
        assert_eq!(format_percent(0.9999), "99.99%");
    }
}

/// A count with thousands separators: `1,234,567` (the tracer's own `tracer stats` formatting).
pub use tracer_capture::text::thousands as format_count;

/// A path segment for a markdown link: characters other than letters, digits and `-._+~` are
/// percent-encoded, so `memray:native.md` is not read as a URL with the scheme `memray:`.
pub fn link_segment(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._+~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod more_tests {
    use super::*;

    #[test]
    fn counts_and_links() {
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(1_234_567), "1,234,567");
        assert_eq!(link_segment("memray:native"), "memray%3Anative");
        assert_eq!(
            link_segment("python-allocators+native"),
            "python-allocators+native"
        );
        assert_eq!(link_segment("a b"), "a%20b");
    }
}
