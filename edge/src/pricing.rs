//! Order arithmetic: line totals, discounts, taxes and rounding, in integer
//! minor units only. Pure: the caller looks the menu up and passes prices and
//! rates in; nothing here reads a database or a clock.
//!
//! The rules (docs/decisions/0010-order-pricing.md):
//!
//! 1. `unit_price` = variation price + the prices of the chosen modifiers;
//!    `line_total` = `unit_price` × `quantity`; `subtotal` = Σ `line_total`.
//! 2. Order discounts apply in the order given, each to what is left after
//!    the ones before it. A percent discount is `round(left × rate)`; an
//!    amount discount is `min(amount, left)`, so discounts never take the
//!    order below zero.
//! 3. Each discount is allocated to the lines pro rata to what is left of
//!    each line, by the largest-remainder method (ties to the earlier line),
//!    so the shares are whole minor units that add up to the discount.
//! 4. Per line and per tax, with `D` the line's discounted amount and `R` the
//!    sum of the line's inclusive rates: `tax = round(D × rate / (1 + R))`.
//!    For an inclusive tax that is the tax contained in `D`; for an exclusive
//!    one it is the rate applied to the line's net (tax-free) amount, which
//!    is `D` itself when the line has no inclusive tax.
//! 5. `tax_total` = Σ of all line taxes; `total` = `subtotal` −
//!    `discount_total` + Σ exclusive line taxes.
//!
//! Rounding (`tax.rounding`: `half_even` by default, or `half_up`) happens in
//! exactly two places: a percent discount's amount, and each line tax.

use schemas::model::Inclusion;

/// Denominator of rates: a rate of `r` is `r / 1_000_000` (1/10,000 percent).
pub const RATE_SCALE: i128 = 1_000_000;

/// Largest total an order may reach, in minor units (10^15): well inside
/// what JSON numbers carry exactly.
pub const ORDER_LIMIT: i128 = 1_000_000_000_000_000;

/// How a fraction of a minor unit is resolved (the `tax.rounding` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rounding {
    /// Banker's rounding: an exact half goes to the even neighbour.
    #[default]
    HalfEven,
    /// An exact half goes up.
    HalfUp,
}

impl Rounding {
    /// The mode a `tax.rounding` value names; unknown values keep the default.
    pub fn from_setting(value: Option<&str>) -> Rounding {
        match value {
            Some("half_up") => Rounding::HalfUp,
            _ => Rounding::HalfEven,
        }
    }
}

/// `num / den` rounded to an integer; `num >= 0`, `den > 0`.
pub fn round_div(num: i128, den: i128, mode: Rounding) -> i128 {
    debug_assert!(num >= 0 && den > 0);
    let q = num / den;
    let r = num % den;
    match (2 * r).cmp(&den) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => match mode {
            Rounding::HalfUp => q + 1,
            Rounding::HalfEven => q + (q & 1),
        },
    }
}

/// One tax on a line: its rate in 1/10,000 percent and how it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTax {
    pub rate: u64,
    pub inclusion: Inclusion,
}

/// One order line as priced: unit price (variation + modifiers), quantity
/// and the item's taxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub unit_price: u64,
    pub quantity: u64,
    pub taxes: Vec<LineTax>,
}

/// An order discount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discount {
    /// Rate in 1/10,000 percent of what is left.
    Percent(u64),
    /// Minor units, at most what is left.
    Amount(u64),
}

/// The priced order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Priced {
    /// `unit_price × quantity` per line.
    pub line_totals: Vec<i64>,
    /// The discount allocated to each line.
    pub line_discounts: Vec<i64>,
    /// The taxes of each line, in the order of the line's taxes.
    pub line_taxes: Vec<Vec<i64>>,
    pub subtotal: i64,
    pub discount_total: i64,
    /// Inclusive plus exclusive taxes.
    pub tax_total: i64,
    pub exclusive_tax_total: i64,
    /// What the guest pays: subtotal − discounts + exclusive taxes.
    pub total: i64,
}

/// The order is too large to price within [`ORDER_LIMIT`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the order's amounts exceed {ORDER_LIMIT} minor units")]
pub struct TooLarge;

fn checked(v: i128) -> Result<i64, TooLarge> {
    if (0..ORDER_LIMIT).contains(&v) {
        i64::try_from(v).map_err(|_| TooLarge)
    } else {
        Err(TooLarge)
    }
}

/// Split `amount` over `weights` pro rata by the largest-remainder method:
/// every share is a whole number, the shares add up to `amount`, and ties in
/// the remainder go to the earlier index. `amount` must not exceed the sum of
/// the weights (then no share exceeds its weight).
pub fn allocate(amount: i128, weights: &[i128]) -> Vec<i128> {
    let total: i128 = weights.iter().sum();
    if total <= 0 || amount <= 0 {
        return vec![0; weights.len()];
    }
    let mut shares: Vec<i128> = weights.iter().map(|w| amount * w / total).collect();
    let mut left = amount - shares.iter().sum::<i128>();
    let mut order: Vec<(usize, i128)> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| (i, amount * w % total))
        .collect();
    // Largest remainder first; equal remainders keep index order (stable sort).
    order.sort_by_key(|&(_, remainder)| std::cmp::Reverse(remainder));
    for (i, _) in order {
        if left == 0 {
            break;
        }
        shares[i] += 1;
        left -= 1;
    }
    shares
}

/// Price an order. See the module docs for the rules.
pub fn price(lines: &[Line], discounts: &[Discount], mode: Rounding) -> Result<Priced, TooLarge> {
    let gross: Vec<i128> = lines
        .iter()
        .map(|l| i128::from(l.unit_price) * i128::from(l.quantity))
        .collect();
    let subtotal: i128 = gross.iter().sum();
    checked(subtotal)?;

    // Discounts, in order, each on what is left.
    let mut left_per_line = gross.clone();
    for d in discounts {
        let left: i128 = left_per_line.iter().sum();
        let amount = match *d {
            Discount::Percent(rate) => round_div(left * i128::from(rate), RATE_SCALE, mode),
            Discount::Amount(a) => i128::from(a),
        }
        .min(left);
        let shares = allocate(amount, &left_per_line);
        for (l, share) in left_per_line.iter_mut().zip(shares) {
            *l -= share;
        }
    }

    let mut priced = Priced::default();
    let mut tax_total: i128 = 0;
    let mut exclusive_total: i128 = 0;
    for ((line, g), net) in lines.iter().zip(&gross).zip(&left_per_line) {
        let inclusive_rates: i128 = line
            .taxes
            .iter()
            .filter(|t| t.inclusion == Inclusion::Inclusive)
            .map(|t| i128::from(t.rate))
            .sum();
        let den = RATE_SCALE + inclusive_rates;
        let mut taxes = Vec::with_capacity(line.taxes.len());
        for t in &line.taxes {
            let tax = round_div(net * i128::from(t.rate), den, mode);
            tax_total += tax;
            if t.inclusion == Inclusion::Exclusive {
                exclusive_total += tax;
            }
            taxes.push(checked(tax)?);
        }
        priced.line_totals.push(checked(*g)?);
        priced.line_discounts.push(checked(g - net)?);
        priced.line_taxes.push(taxes);
    }
    let discount_total = subtotal - left_per_line.iter().sum::<i128>();
    priced.subtotal = checked(subtotal)?;
    priced.discount_total = checked(discount_total)?;
    priced.tax_total = checked(tax_total)?;
    priced.exclusive_tax_total = checked(exclusive_total)?;
    priced.total = checked(subtotal - discount_total + exclusive_total)?;
    Ok(priced)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EX: Inclusion = Inclusion::Exclusive;
    const IN: Inclusion = Inclusion::Inclusive;

    fn line(unit_price: u64, quantity: u64, taxes: &[(u64, Inclusion)]) -> Line {
        Line {
            unit_price,
            quantity,
            taxes: taxes
                .iter()
                .map(|&(rate, inclusion)| LineTax { rate, inclusion })
                .collect(),
        }
    }

    #[test]
    fn halves_round_by_mode() {
        use Rounding::*;
        for (num, den, even, up) in [
            (5, 10, 0, 1),
            (15, 10, 2, 2),
            (25, 10, 2, 3),
            (24, 10, 2, 2),
            (26, 10, 3, 3),
            (0, 10, 0, 0),
        ] {
            assert_eq!(round_div(num, den, HalfEven), even, "{num}/{den}");
            assert_eq!(round_div(num, den, HalfUp), up, "{num}/{den}");
        }
    }

    #[test]
    fn allocation_adds_up_and_is_deterministic() {
        assert_eq!(allocate(100, &[1, 1, 1]), vec![34, 33, 33]);
        assert_eq!(allocate(2, &[300, 100]), vec![2, 0]);
        assert_eq!(allocate(3, &[100, 100]), vec![2, 1]);
        assert_eq!(allocate(0, &[1, 2]), vec![0, 0]);
        assert_eq!(allocate(5, &[0, 0]), vec![0, 0]);
        let s = allocate(999, &[7, 13, 0, 980]);
        assert_eq!(s.iter().sum::<i128>(), 999);
        assert_eq!(s[2], 0);
    }

    #[test]
    fn the_design_example() {
        // 2 × (1099 + 200) with 7.25 % exclusive, minus 200.
        let p = price(
            &[line(1299, 2, &[(72_500, EX)])],
            &[Discount::Amount(200)],
            Rounding::HalfEven,
        )
        .expect("priced");
        assert_eq!(p.subtotal, 2598);
        assert_eq!(p.discount_total, 200);
        assert_eq!(p.tax_total, 174); // 2398 × 7.25 % = 173.855
        assert_eq!(p.total, 2572);
    }

    #[test]
    fn inclusive_tax_is_only_reported() {
        // 1190 including 19 %: 1190 × 0.19 / 1.19 = 190.
        let p = price(&[line(1190, 1, &[(190_000, IN)])], &[], Rounding::HalfEven).expect("priced");
        assert_eq!((p.tax_total, p.total), (190, 1190));
    }

    #[test]
    fn discount_larger_than_the_order_stops_at_zero() {
        let p = price(
            &[line(150, 1, &[(100_000, EX)])],
            &[Discount::Amount(500), Discount::Percent(500_000)],
            Rounding::HalfEven,
        )
        .expect("priced");
        assert_eq!((p.discount_total, p.tax_total, p.total), (150, 0, 0));
    }

    #[test]
    fn too_large_is_an_error_not_a_wrap() {
        let l = line(999_999_999_999, 10_000, &[]);
        assert_eq!(price(&[l], &[], Rounding::HalfEven), Err(TooLarge));
    }
}
