//! A fast path for the plain decimal numbers that fill most CSV cells (`-1.25`, `7`,
//! `3.5e-05`): Clinger's exact case. When the digits fit in 15 (an integer below 2⁵³,
//! exact as an `f64`) and the power of ten is at most 22 (also exact), one IEEE
//! multiplication or division gives the correctly rounded value — bit for bit what
//! `str::parse::<f64>` returns. Anything else (more digits, larger exponents, spaces,
//! `inf`, `nan`, text) answers `None`, and the caller parses as before.

/// Powers of ten exact as `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Most digits (integer and fraction together) taken on the fast path.
const MAX_DIGITS: u32 = 15;

/// The value of `s` when it is a plain decimal number on the exact fast path (an optional
/// sign, digits with at most one `.`, at least one digit, an optional exponent `e`/`E`
/// with an optional sign and one to three digits); `None` otherwise.
#[inline]
pub(crate) fn fast_f64(s: &str) -> Option<f64> {
    match scan(s.as_bytes(), 0)? {
        (end, v) if end == s.len() => Some(v),
        _ => None,
    }
}

/// [`fast_f64`] of the field that starts at `b[start]` and ends at the next `delimiter`,
/// line break, carriage return or the end of `b`, read in the same sweep that finds its
/// end: `Some((end, value))` exactly when `fast_f64` of the field answers `Some(value)`
/// (`end` is the index of the byte that ends it); `None` otherwise.
#[inline]
pub(crate) fn fast_field(b: &[u8], start: usize, delimiter: u8) -> Option<(usize, f64)> {
    let (end, v) = scan(b, start)?;
    match b.get(end) {
        None => Some((end, v)),
        Some(&c) if c == delimiter || c == b'\n' || c == b'\r' => Some((end, v)),
        Some(_) => None,
    }
}

/// The number that starts at `b[start]`, up to the first byte that cannot continue it:
/// `Some((end, value))` when it is on the exact fast path (see [`fast_f64`]), `None` when
/// it is not (no digit, more than [`MAX_DIGITS`] digits, an exponent without digits or of
/// more than three, a power of ten beyond 22). The callers check what ends it.
#[inline]
fn scan(b: &[u8], start: usize) -> Option<(usize, f64)> {
    let mut i = start;
    let negative = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut mantissa: u64 = 0;
    let mut digits = 0u32;
    let mut any = false;
    let mut fraction = 0i32;
    let mut seen_dot = false;
    while let Some(&c) = b.get(i) {
        let d = c.wrapping_sub(b'0');
        if d <= 9 {
            any = true;
            // Leading zeros carry no digit.
            if mantissa != 0 || d != 0 {
                digits += 1;
                if digits > MAX_DIGITS {
                    return None;
                }
                mantissa = mantissa * 10 + u64::from(d);
            }
            if seen_dot {
                fraction += 1;
            }
        } else if c == b'.' && !seen_dot {
            seen_dot = true;
        } else {
            break;
        }
        i += 1;
    }
    // At least one digit before the exponent ("." or "-" alone are no numbers).
    if !any {
        return None;
    }
    let mut exponent = 0i32;
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        let exp_negative = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let from = i;
        while let Some(&c) = b.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            if i - from >= 3 {
                return None;
            }
            exponent = exponent * 10 + i32::from(d);
            i += 1;
        }
        if i == from {
            return None;
        }
        if exp_negative {
            exponent = -exponent;
        }
    }
    let e = exponent - fraction;
    let m = mantissa as f64;
    let magnitude = if mantissa == 0 {
        0.0
    } else if e >= 0 {
        m * *POW10.get(usize::try_from(e).ok()?)?
    } else {
        m / *POW10.get(usize::try_from(-e).ok()?)?
    };
    Some((i, if negative { -magnitude } else { magnitude }))
}

#[cfg(test)]
mod tests {
    use super::{fast_f64, fast_field};
    use crate::baseline::sampling::SplitMix64;

    /// Every answer of the fast path is `str::parse`'s, bit for bit; it declines what
    /// it does not cover rather than guess.
    #[test]
    fn fast_path_equals_std_parse_bit_for_bit() {
        let fixed = [
            "0",
            "-0",
            "+0",
            "0.0",
            "-0.0",
            "7",
            "-7",
            "3.25",
            ".5",
            "5.",
            "-.5",
            "1e5",
            "1E5",
            "1e+5",
            "1e-5",
            "2.5e-08",
            "-1.5E+22",
            "123456789012345",
            "0.000123",
            "00012.5",
            "0.1",
            "0.2",
            "0.3",
            "9007199254740991",
            "1234567890123456",
            "1e23",
            "1e-23",
            "4.9e-324",
            "1.7976931348623157e308",
            "",
            "-",
            "+",
            ".",
            "-.",
            "e5",
            "1e",
            "1e+",
            "1.2.3",
            "1,5",
            " 1",
            "1 ",
            "inf",
            "-inf",
            "nan",
            "NaN",
            "infinity",
            "0x10",
            "1_000",
            "--1",
            "1e1234",
            "12a",
            "abc",
            "1.#IND",
        ];
        let mut cases: Vec<String> = fixed.iter().map(|s| s.to_string()).collect();
        let mut rng = SplitMix64::for_stream(3, "numbers");
        for _ in 0..200_000 {
            let r = rng.next_u64();
            let v = f64::from_bits(rng.next_u64());
            let s = match r % 5 {
                0 => format!("{}", (r >> 8) as f64 / 1e6),
                1 => format!("{:.6e}", v),
                2 => format!("{}", v),
                3 => format!("{:.6}", (r >> 20) as f64 / 7.0 - 1e9),
                _ => format!("{}", ((r >> 3) % 10_000) as i64 - 5000),
            };
            cases.push(s);
        }
        // The field reader answers what `fast_f64` answers of the field, whatever ends it.
        for s in &cases {
            if s.contains([',', '\n', '\r', '\t']) {
                continue;
            }
            let want = fast_f64(s).map(f64::to_bits);
            for end in ["", ",", "\n", "\r\n", ",x"] {
                let field = format!("{s}{end}");
                let got = fast_field(field.as_bytes(), 0, b',');
                assert_eq!(got.map(|(_, v)| v.to_bits()), want, "{field:?}");
                if let Some((at, _)) = got {
                    assert_eq!(at, s.len(), "{field:?}");
                }
            }
            let tab = format!("{s}\t1");
            let got = fast_field(tab.as_bytes(), 0, b'\t').map(|(_, v)| v.to_bits());
            assert_eq!(got, want, "{tab:?}");
            // A field that runs on past the number is no plain number.
            let more = format!("{s}#");
            assert_eq!(fast_field(more.as_bytes(), 0, b','), None, "{more:?}");
        }
        let mut taken = 0;
        for s in &cases {
            let want = s.parse::<f64>().ok();
            if let Some(got) = fast_f64(s) {
                taken += 1;
                let want = want.unwrap_or_else(|| panic!("{s:?}: std refuses, fast path {got}"));
                assert_eq!(got.to_bits(), want.to_bits(), "{s:?}");
            }
        }
        assert!(taken > cases.len() / 5, "the fast path took only {taken}");
        for s in ["3.25", "-7", "1e5", "0.000123", "-0"] {
            assert!(fast_f64(s).is_some(), "{s}");
        }
        for s in [
            "",
            "-",
            ".",
            "1e",
            " 1",
            "inf",
            "nan",
            "1234567890123456",
            "1e23",
        ] {
            assert!(fast_f64(s).is_none(), "{s}");
        }
    }
}
