//! Masking of real numbers for logs: the only way a number reaches a log line.
//!
//! `Masked` keeps enough of a number to tell calls apart (country and operator
//! prefix, last four digits) and hides the rest, e.g. `+86138****0000`.

use std::fmt;

/// Display wrapper that hides the middle of a number or account.
pub struct Masked<'a>(pub &'a str);

impl fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let n = s.chars().count();
        let (head, tail) = match n {
            0..=4 => (0, 0),
            5..=8 => (1, 2),
            9..=11 => (3, 4),
            _ => (6, 4),
        };
        let mut out = String::with_capacity(n);
        for (i, c) in s.chars().enumerate() {
            if i < head || i >= n - tail {
                out.push(c);
            } else if i < head + 4 {
                out.push('*');
            }
        }
        if n <= 4 {
            out = "*".repeat(n.max(1));
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::Masked;

    #[test]
    fn e164_number_keeps_prefix_and_last_four() {
        assert_eq!(Masked("+8613800000000").to_string(), "+86138****0000");
    }

    #[test]
    fn short_values_are_fully_hidden() {
        assert_eq!(Masked("1234").to_string(), "****");
        assert!(!Masked("13812345678").to_string().contains("1234567"));
    }
}
