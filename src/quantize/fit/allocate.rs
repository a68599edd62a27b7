//! Choosing one type per tensor to minimise the predicted loss of the whole model under a byte
//! budget: a multiple-choice knapsack, solved by Lagrangian relaxation (each tensor takes the
//! type minimising `loss + λ·bytes`, λ bisected to the largest set that fits) and then a greedy
//! pass spending what is left on the upgrades with the best loss saved per byte.

/// One tensor's options: (bytes, predicted loss) per candidate type, in any order.
#[derive(Clone, Debug)]
pub struct Choices {
    pub options: Vec<(u64, f64)>,
}

/// The index of the chosen option of each tensor, or `None` if even the smallest options
/// exceed `budget`.
pub fn allocate(tensors: &[Choices], budget: u64) -> Option<Vec<usize>> {
    let smallest: Vec<usize> = tensors.iter().map(|c| cheapest(&c.options)).collect();
    if total(tensors, &smallest) > budget {
        return None;
    }
    let pick = |lambda: f64| -> Vec<usize> {
        tensors
            .iter()
            .map(|c| {
                (0..c.options.len())
                    .min_by(|&a, &b| {
                        let cost = |i: usize| c.options[i].1 + lambda * c.options[i].0 as f64;
                        cost(a)
                            .total_cmp(&cost(b))
                            .then(c.options[a].0.cmp(&c.options[b].0))
                    })
                    .expect("every tensor has an option")
            })
            .collect()
    };
    // λ = 0 takes the least loss: done if that fits.
    let best = pick(0.0);
    if total(tensors, &best) <= budget {
        return Some(best);
    }
    // A λ large enough makes bytes dominate: the smallest options.
    let (mut lo, mut hi) = (0f64, 1f64);
    while total(tensors, &pick(hi)) > budget {
        hi *= 2.0;
        if !hi.is_finite() {
            return Some(greedy(tensors, smallest, budget));
        }
    }
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if total(tensors, &pick(mid)) > budget {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(greedy(tensors, pick(hi), budget))
}

fn cheapest(options: &[(u64, f64)]) -> usize {
    (0..options.len())
        .min_by(|&a, &b| {
            options[a]
                .0
                .cmp(&options[b].0)
                .then(options[a].1.total_cmp(&options[b].1))
        })
        .expect("every tensor has an option")
}

fn total(tensors: &[Choices], chosen: &[usize]) -> u64 {
    tensors
        .iter()
        .zip(chosen)
        .map(|(c, &i)| c.options[i].0)
        .sum()
}

/// From a fitting choice, take the upgrade (any tensor, any larger option that still fits)
/// with the most loss saved per extra byte, until none fits.
fn greedy(tensors: &[Choices], mut chosen: Vec<usize>, budget: u64) -> Vec<usize> {
    let mut used = total(tensors, &chosen);
    loop {
        let mut best: Option<(f64, usize, usize)> = None;
        for (t, c) in tensors.iter().enumerate() {
            let (bytes, loss) = c.options[chosen[t]];
            for (i, &(b, l)) in c.options.iter().enumerate() {
                if b <= bytes || l >= loss || used - bytes + b > budget {
                    continue;
                }
                let gain = (loss - l) / (b - bytes) as f64;
                if best.is_none_or(|(g, _, _)| gain > g) {
                    best = Some((gain, t, i));
                }
            }
        }
        let Some((_, t, i)) = best else {
            return chosen;
        };
        used = used - tensors[t].options[chosen[t]].0 + tensors[t].options[i].0;
        chosen[t] = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss_of(tensors: &[Choices], chosen: &[usize]) -> f64 {
        tensors
            .iter()
            .zip(chosen)
            .map(|(c, &i)| c.options[i].1)
            .sum()
    }

    /// Every combination, for checking against small cases.
    fn brute_force(tensors: &[Choices], budget: u64) -> f64 {
        let mut best = f64::INFINITY;
        let mut idx = vec![0usize; tensors.len()];
        loop {
            if total(tensors, &idx) <= budget {
                best = best.min(loss_of(tensors, &idx));
            }
            let mut k = 0;
            loop {
                if k == idx.len() {
                    return best;
                }
                idx[k] += 1;
                if idx[k] < tensors[k].options.len() {
                    break;
                }
                idx[k] = 0;
                k += 1;
            }
        }
    }

    fn tensors() -> Vec<Choices> {
        // Bytes and loss shaped like quant types: loss halves per extra bit, scaled per tensor.
        (0..5)
            .map(|t| Choices {
                options: (2..=8)
                    .map(|bits| {
                        let size = 1000 * (t + 1) as u64;
                        (size * bits / 8, (t as f64 + 0.5) * 0.5f64.powi(bits as i32))
                    })
                    .collect(),
            })
            .collect()
    }

    #[test]
    fn fits_and_comes_near_the_optimum() {
        let ts = tensors();
        let min: u64 = ts.iter().map(|c| c.options[0].0).sum();
        let max: u64 = ts.iter().map(|c| c.options.last().unwrap().0).sum();
        let mut previous = f64::INFINITY;
        for budget in (min..=max).step_by(97) {
            let chosen = allocate(&ts, budget).unwrap();
            assert!(total(&ts, &chosen) <= budget);
            let ours = loss_of(&ts, &chosen);
            let optimum = brute_force(&ts, budget);
            assert!(
                ours <= optimum * 1.1 + 1e-12,
                "{budget}: {ours} vs {optimum}"
            );
            assert!(ours <= previous + 1e-15, "more budget never costs quality");
            previous = ours;
        }
        assert_eq!(allocate(&ts, min - 1), None);
    }
}
