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
//!    sum of the line's inclusive rates, the exact tax is `D × rate / (1 + R)`.
//!    For an inclusive tax that is the tax contained in `D`; for an exclusive
//!    one it is the rate applied to the line's net (tax-free) amount, which
//!    is `D` itself when the line has no inclusive tax. Where it is rounded
//!    is the `tax.rounding_scope` setting ([`Scope`]): `line` (the default)
//!    rounds each line's tax; `order` adds each tax's exact amounts over
//!    the order and rounds once, then splits that tax over its lines by the
//!    largest-remainder method (ties to the earlier line), so the line
//!    taxes still add up to the order's.
//! 5. `tax_total` = Σ of all line taxes; `total` = `subtotal` −
//!    `discount_total` + Σ exclusive line taxes.
//!
//! Rounding (`tax.rounding`: `half_up` by default, commercial rounding as
//! US sales tax and EU VAT practice expect, or `half_even`) happens in
//! exactly two places: a percent discount's amount, and each tax (per line
//! or per order).

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
    HalfEven,
    /// An exact half goes up: commercial rounding, what tax authorities
    /// expect (DESIGN.md §14).
    #[default]
    HalfUp,
}

impl Rounding {
    /// The mode a `tax.rounding` value names; unknown values keep the default.
    pub fn from_setting(value: Option<&str>) -> Rounding {
        match value {
            Some("half_even") => Rounding::HalfEven,
            _ => Rounding::HalfUp,
        }
    }
}

/// Where each tax is rounded (the `tax.rounding_scope` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// Each line's tax is rounded: the same items can cost a cent more or
    /// less depending on how they were entered (one line of 2 or two of 1).
    #[default]
    Line,
    /// Each tax is rounded once on the order's exact sum.
    Order,
}

impl Scope {
    /// The scope a `tax.rounding_scope` value names; unknown values keep
    /// the default.
    pub fn from_setting(value: Option<&str>) -> Scope {
        match value {
            Some("order") => Scope::Order,
            _ => Scope::Line,
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

/// One tax on a line: which tax it is (lines that share a tax share its
/// `key`), its rate in 1/10,000 percent and how it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTax {
    pub key: usize,
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
pub fn price(
    lines: &[Line],
    discounts: &[Discount],
    mode: Rounding,
    scope: Scope,
) -> Result<Priced, TooLarge> {
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

    // Each line's exact taxes, `num / den`.
    let exact: Vec<Vec<(i128, i128)>> = lines
        .iter()
        .zip(&left_per_line)
        .map(|(line, net)| {
            let inclusive_rates: i128 = line
                .taxes
                .iter()
                .filter(|t| t.inclusion == Inclusion::Inclusive)
                .map(|t| i128::from(t.rate))
                .sum();
            let den = RATE_SCALE + inclusive_rates;
            line.taxes
                .iter()
                .map(|t| (net * i128::from(t.rate), den))
                .collect()
        })
        .collect();
    let rounded: Vec<Vec<i128>> = match scope {
        Scope::Line => exact
            .iter()
            .map(|taxes| {
                taxes
                    .iter()
                    .map(|&(num, den)| round_div(num, den, mode))
                    .collect()
            })
            .collect(),
        Scope::Order => round_per_order(lines, &exact, mode)?,
    };

    let mut priced = Priced::default();
    let mut tax_total: i128 = 0;
    let mut exclusive_total: i128 = 0;
    for (((line, g), net), taxes) in lines.iter().zip(&gross).zip(&left_per_line).zip(&rounded) {
        let mut out = Vec::with_capacity(taxes.len());
        for (t, &tax) in line.taxes.iter().zip(taxes) {
            tax_total += tax;
            if t.inclusion == Inclusion::Exclusive {
                exclusive_total += tax;
            }
            out.push(checked(tax)?);
        }
        priced.line_totals.push(checked(*g)?);
        priced.line_discounts.push(checked(g - net)?);
        priced.line_taxes.push(out);
    }
    let discount_total = subtotal - left_per_line.iter().sum::<i128>();
    priced.subtotal = checked(subtotal)?;
    priced.discount_total = checked(discount_total)?;
    priced.tax_total = checked(tax_total)?;
    priced.exclusive_tax_total = checked(exclusive_total)?;
    priced.total = checked(subtotal - discount_total + exclusive_total)?;
    Ok(priced)
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs()
}

/// Each tax rounded once over the order, then split over its lines by
/// the largest remainder of each line's exact amount (ties to the earlier
/// line). `exact[i][j]` is line `i`'s `j`th tax as `num / den`.
fn round_per_order(
    lines: &[Line],
    exact: &[Vec<(i128, i128)>],
    mode: Rounding,
) -> Result<Vec<Vec<i128>>, TooLarge> {
    let mut out: Vec<Vec<i128>> = exact.iter().map(|t| vec![0; t.len()]).collect();
    let mut keys: Vec<usize> = lines
        .iter()
        .flat_map(|l| l.taxes.iter().map(|t| t.key))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        // (line, position) of this tax on each line that has it.
        let parts: Vec<(usize, usize)> = lines
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                l.taxes
                    .iter()
                    .enumerate()
                    .filter(move |(_, t)| t.key == key)
                    .map(move |(j, _)| (i, j))
            })
            .collect();
        // The exact sum over a common denominator.
        let mut common: i128 = 1;
        for &(i, j) in &parts {
            let den = exact[i][j].1;
            common = (common / gcd(common, den))
                .checked_mul(den)
                .ok_or(TooLarge)?;
        }
        let mut scaled = Vec::with_capacity(parts.len());
        let mut sum: i128 = 0;
        for &(i, j) in &parts {
            let (num, den) = exact[i][j];
            let n = num.checked_mul(common / den).ok_or(TooLarge)?;
            sum = sum.checked_add(n).ok_or(TooLarge)?;
            scaled.push(n);
        }
        let tax = round_div(sum, common, mode);
        // Whole units first, then what is left by the largest remainder.
        let mut left = tax;
        let mut remainders = Vec::with_capacity(parts.len());
        for (k, &(i, j)) in parts.iter().enumerate() {
            out[i][j] = scaled[k] / common;
            left -= out[i][j];
            remainders.push((k, scaled[k] % common));
        }
        remainders.sort_by_key(|&(_, r)| std::cmp::Reverse(r));
        for (k, _) in remainders {
            if left <= 0 {
                break;
            }
            let (i, j) = parts[k];
            out[i][j] += 1;
            left -= 1;
        }
    }
    Ok(out)
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
                .enumerate()
                .map(|(key, &(rate, inclusion))| LineTax {
                    key,
                    rate,
                    inclusion,
                })
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
            Scope::Line,
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
        let p = price(
            &[line(1190, 1, &[(190_000, IN)])],
            &[],
            Rounding::HalfEven,
            Scope::Line,
        )
        .expect("priced");
        assert_eq!((p.tax_total, p.total), (190, 1190));
    }

    #[test]
    fn discount_larger_than_the_order_stops_at_zero() {
        let p = price(
            &[line(150, 1, &[(100_000, EX)])],
            &[Discount::Amount(500), Discount::Percent(500_000)],
            Rounding::HalfEven,
            Scope::Line,
        )
        .expect("priced");
        assert_eq!((p.discount_total, p.tax_total, p.total), (150, 0, 0));
    }

    #[test]
    fn too_large_is_an_error_not_a_wrap() {
        let l = line(999_999_999_999, 10_000, &[]);
        assert_eq!(
            price(&[l], &[], Rounding::HalfEven, Scope::Line),
            Err(TooLarge)
        );
    }

    /// The example: 2 sodas at 1.99 with 8.875 % sales tax.
    #[test]
    fn order_scope_does_not_depend_on_how_lines_were_entered() {
        let soda = |q| line(199, q, &[(88_750, EX)]);
        let one_line = [soda(2)];
        let two_lines = [soda(1), soda(1)];
        let tax = |lines: &[Line], scope| {
            price(lines, &[], Rounding::HalfUp, scope)
                .expect("priced")
                .tax_total
        };
        assert_eq!(tax(&one_line, Scope::Line), 35); // 35.3225
        assert_eq!(tax(&two_lines, Scope::Line), 36); // 17.66 + 17.66
        assert_eq!(tax(&one_line, Scope::Order), 35);
        assert_eq!(tax(&two_lines, Scope::Order), 35);
        let p = price(&two_lines, &[], Rounding::HalfUp, Scope::Order).expect("priced");
        assert_eq!(
            p.line_taxes,
            vec![vec![18], vec![17]],
            "split, ties to the earlier line"
        );
        assert_eq!(p.total, 398 + 35);
    }

    #[test]
    fn half_up_is_the_default_rounding() {
        assert_eq!(Rounding::default(), Rounding::HalfUp);
        assert_eq!(Rounding::from_setting(None), Rounding::HalfUp);
        assert_eq!(
            Rounding::from_setting(Some("half_even")),
            Rounding::HalfEven
        );
        assert_eq!(Scope::from_setting(None), Scope::Line);
        assert_eq!(Scope::from_setting(Some("order")), Scope::Order);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Up to three taxes (key = position), each with a rate and how it
        /// applies, and lines that carry a subset of them.
        fn order() -> impl Strategy<Value = Vec<Line>> {
            let taxes = proptest::collection::vec((0u64..=250_000, any::<bool>()), 1..=3);
            (
                taxes,
                proptest::collection::vec((0u64..5_000, 1u64..6, any::<u8>()), 1..12),
            )
                .prop_map(|(taxes, lines)| {
                    lines
                        .into_iter()
                        .map(|(unit_price, quantity, mask)| Line {
                            unit_price,
                            quantity,
                            taxes: taxes
                                .iter()
                                .enumerate()
                                .filter(|(k, _)| mask & (1 << k) != 0)
                                .map(|(key, &(rate, inclusive))| LineTax {
                                    key,
                                    rate,
                                    inclusion: if inclusive { IN } else { EX },
                                })
                                .collect(),
                        })
                        .collect()
                })
        }

        fn mode() -> impl Strategy<Value = Rounding> {
            prop_oneof![Just(Rounding::HalfUp), Just(Rounding::HalfEven)]
        }

        proptest! {
            /// With the order scope, splitting each line of `q` into `q`
            /// lines of one changes no amount.
            #[test]
            fn order_scope_is_the_same_however_lines_are_split(lines in order(), mode in mode()) {
                let split: Vec<Line> = lines
                    .iter()
                    .flat_map(|l| (0..l.quantity).map(move |_| Line { quantity: 1, ..l.clone() }))
                    .collect();
                let a = price(&lines, &[], mode, Scope::Order).expect("priced");
                let b = price(&split, &[], mode, Scope::Order).expect("priced");
                prop_assert_eq!((a.tax_total, a.total), (b.tax_total, b.total));
            }

            /// With the order scope, each tax is its exact sum rounded
            /// once (the second model: when every line has the same taxes,
            /// one denominator, one `round_div`), and the line taxes add
            /// up to it.
            #[test]
            fn order_scope_rounds_each_tax_once(lines in order(), mode in mode()) {
                let taxes = lines[0].taxes.clone();
                let same: Vec<Line> = lines.iter().map(|l| Line { taxes: taxes.clone(), ..l.clone() }).collect();
                let p = price(&same, &[], mode, Scope::Order).expect("priced");
                let inclusive: i128 = taxes.iter().filter(|t| t.inclusion == IN).map(|t| i128::from(t.rate)).sum();
                let den = RATE_SCALE + inclusive;
                let gross: i128 = same.iter().map(|l| i128::from(l.unit_price) * i128::from(l.quantity)).sum();
                for (j, t) in taxes.iter().enumerate() {
                    let expect = round_div(gross * i128::from(t.rate), den, mode);
                    let got: i64 = p.line_taxes.iter().map(|lt| lt[j]).sum();
                    prop_assert_eq!(i128::from(got), expect, "tax {}", j);
                    for lt in &p.line_taxes {
                        prop_assert!(lt[j] >= 0);
                    }
                }
            }

            /// Both scopes agree on everything but taxes, and differ in a
            /// tax by less than one unit per line.
            #[test]
            fn the_scopes_differ_only_in_rounding(lines in order(), mode in mode()) {
                let l = price(&lines, &[], mode, Scope::Line).expect("priced");
                let o = price(&lines, &[], mode, Scope::Order).expect("priced");
                prop_assert_eq!((l.subtotal, l.discount_total), (o.subtotal, o.discount_total));
                let slack = lines.iter().map(|x| x.taxes.len() as i64).sum::<i64>();
                prop_assert!((l.tax_total - o.tax_total).abs() <= slack);
            }
        }
    }
}
