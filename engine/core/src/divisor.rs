//! Division by a book's tick or lot size, fixed at start-up, as a multiplication.
//!
//! Every order is checked against both sizes and every change to a level finds the level from
//! the price, so a hardware divide (tens of cycles, on the path of every order) would be paid
//! several times per command. The numbers divided are only ever exact multiples or checked for
//! being one, and for those a divisor d = 2^k × odd is a shift and a multiplication by the odd
//! part's inverse modulo 2^64: the product is the quotient when d divides the number, and larger
//! than (2^64 - 1) / odd when it does not (Granlund and Montgomery, "Division by invariant
//! integers using multiplication", 1994, section 9).

#[derive(Clone, Copy, Debug)]
pub(crate) struct ExactDivisor {
    /// Trailing zero bits of the divisor.
    shift: u32,
    /// The inverse of the divisor's odd part modulo 2^64.
    odd_inverse: u64,
    /// The largest quotient by the odd part: a product above it means "does not divide".
    max_quotient: u64,
}

impl ExactDivisor {
    pub(crate) fn new(divisor: u64) -> ExactDivisor {
        assert!(divisor > 0, "divisor must be positive");
        let shift = divisor.trailing_zeros();
        let odd = divisor >> shift;
        // Newton's iteration doubles the correct low bits of an inverse each step, and an odd
        // number is its own inverse modulo 8: 3, 6, 12, 24, 48, 96 bits.
        let mut inverse = odd;
        for _ in 0..5 {
            inverse = inverse.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(inverse)));
        }
        debug_assert_eq!(odd.wrapping_mul(inverse), 1);
        ExactDivisor { shift, odd_inverse: inverse, max_quotient: u64::MAX / odd }
    }

    /// `x / divisor` if the divisor divides `x`.
    #[inline]
    pub(crate) fn exact_quotient(&self, x: u64) -> Option<u64> {
        if x & ((1 << self.shift) - 1) != 0 {
            return None;
        }
        let quotient = (x >> self.shift).wrapping_mul(self.odd_inverse);
        (quotient <= self.max_quotient).then_some(quotient)
    }

    #[inline]
    pub(crate) fn divides(&self, x: u64) -> bool {
        self.exact_quotient(x).is_some()
    }

    /// `x / divisor` for an `x` the divisor is known to divide.
    #[inline]
    pub(crate) fn quotient_of_multiple(&self, x: u64) -> u64 {
        let quotient = (x >> self.shift).wrapping_mul(self.odd_inverse);
        debug_assert_eq!(self.exact_quotient(x), Some(quotient), "{x} is not a multiple");
        quotient
    }
}

#[cfg(test)]
mod tests {
    use super::ExactDivisor;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn agrees_with_hardware_division(divisor in 1u64..=u64::MAX, x in any::<u64>(), small in 1u64..1_000, k in 0u64..1_000_000) {
            for d in [divisor, small, small << 20] {
                let exact = ExactDivisor::new(d);
                for n in [x, k.wrapping_mul(d), k * small, x / d * d] {
                    prop_assert_eq!(exact.exact_quotient(n), (n % d == 0).then(|| n / d), "{} / {}", n, d);
                }
                prop_assert_eq!(exact.quotient_of_multiple(x / d * d), x / d);
            }
        }
    }

    #[test]
    fn edge_divisors() {
        for d in [1, 2, 3, 100, 1 << 63, u64::MAX, u64::MAX - 1] {
            let exact = ExactDivisor::new(d);
            for n in [0, 1, d - 1, d, d.wrapping_mul(2), u64::MAX, u64::MAX / d * d] {
                assert_eq!(exact.exact_quotient(n), (n % d == 0).then(|| n / d), "{n} / {d}");
            }
        }
    }
}
