//! The bins of `np.histogram(x, bins=edges)`: explicit edges, as numpy reads them.
//!
//! Bin `i` holds the values `v` with `edges[i] <= v < edges[i + 1]`, and the last
//! bin also its upper edge. The edges must increase monotonically, as numpy
//! requires, which lets two neighbours be equal: a bin `[e, e)` holds nothing,
//! unless it is the last, `[e, e]`, which holds `e`. numpy finds the bins by
//! sorting the data and searching it for each edge, comparing in the common type
//! of the data and the edges, `float64` here (integers beyond 2^53 are rounded to
//! it, as numpy rounds them); a NaN is sorted last and lands in no bin.
//!
//! Here each element's bin is found by a binary search of the edges, the same
//! rule the other way round: the bin is the last edge `<= v` (the last bin for `v`
//! on the last edge), for `v` within the first and the last edge. The search has
//! no branch that depends on the data: `ceil(log2(edges))` steps for every element.

use super::super::number::Number;
use super::tally::BinOf;
use super::uniform::MAX_BINS;
use crate::error::{Error, Result};

/// Checks explicit edges as numpy does, and more: at most `MAX_BINS + 1` of them,
/// none NaN (numpy takes a NaN edge and bins wrongly), and none below the one
/// before it (numpy's "`bins` must increase monotonically").
pub(super) fn check(edges: &[f64]) -> Result<()> {
    if edges.len() > MAX_BINS + 1 {
        return Err(Error::InvalidArgument {
            name: "bins",
            reason: format!(
                "{} edges make {} bins; a histogram has at most 2^20",
                edges.len(),
                edges.len() - 1
            ),
        });
    }
    if let Some(i) = edges.iter().position(|e| e.is_nan()) {
        return Err(Error::InvalidArgument {
            name: "bins",
            reason: format!("edge {i} is NaN"),
        });
    }
    if let Some(i) = edges.windows(2).position(|w| w[0] > w[1]) {
        return Err(Error::InvalidArgument {
            name: "bins",
            reason: format!(
                "edge {} ({}) is below edge {i} ({}): the edges must increase monotonically",
                i + 1,
                edges[i + 1],
                edges[i]
            ),
        });
    }
    Ok(())
}

/// Explicit edges, checked by [`check`], at least two of them: the bins of an
/// element.
#[derive(Clone, Copy)]
pub(super) struct Edges<'a>(pub &'a [f64]);

impl<T: Number> BinOf<T> for Edges<'_> {
    #[inline(always)]
    fn bins(&self) -> usize {
        self.0.len() - 1
    }

    #[inline(always)]
    fn bin(&self, x: T) -> u32 {
        let (edges, v) = (self.0, x.to_f64());
        let last = edges.len() - 1;
        // False for a NaN, as for a value outside the edges.
        let inside = v >= edges[0] && v <= edges[last];
        // The last edge `<= v`: `lo` stays on an edge `<= v` (edge 0, for a value
        // inside), and `lo + size` on one above it or past the end.
        let (mut lo, mut size) = (0, edges.len());
        while size > 1 {
            let half = size / 2;
            let mid = lo + half;
            lo = if edges[mid] <= v { mid } else { lo };
            size -= half;
        }
        // `v` on the last edge is in the last bin.
        let bin = lo.min(last - 1);
        (if inside { bin } else { last }) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::{BinOf, Edges, check};

    fn bin(edges: &[f64], v: f64) -> u32 {
        check(edges).unwrap();
        BinOf::<f64>::bin(&Edges(edges), v)
    }

    #[test]
    fn values_land_in_the_bin_whose_lower_edge_they_reach() {
        let e = [0.0, 1.0, 2.5, 10.0];
        assert_eq!(bin(&e, 0.0), 0);
        assert_eq!(bin(&e, -0.0), 0);
        assert_eq!(bin(&e, 0.999), 0);
        assert_eq!(bin(&e, 1.0), 1);
        assert_eq!(bin(&e, 2.5), 2);
        assert_eq!(bin(&e, 10.0), 2); // the last bin holds its upper edge
        assert_eq!(bin(&e, 10.5), 3); // outside: `bins`
        assert_eq!(bin(&e, -1e-300), 3);
        assert_eq!(bin(&e, f64::NAN), 3);
        assert_eq!(bin(&e, f64::INFINITY), 3);
    }

    /// numpy 2.4: `np.histogram([1.0, 1, 2], bins=[0, 1, 1])` is `[0, 2]`, and
    /// with `bins=[0, 1, 1, 2]` it is `[0, 0, 3]`.
    #[test]
    fn equal_edges_make_empty_bins_but_a_closed_last_one() {
        assert_eq!(bin(&[0.0, 1.0, 1.0], 1.0), 1);
        assert_eq!(bin(&[0.0, 1.0, 1.0, 2.0], 1.0), 2);
        assert_eq!(bin(&[0.0, 1.0, 1.0, 2.0], 0.5), 0);
        assert_eq!(bin(&[3.0, 3.0], 3.0), 0);
        assert_eq!(
            bin(&[f64::NEG_INFINITY, 0.0, f64::INFINITY], f64::INFINITY),
            1
        );
        assert_eq!(bin(&[f64::NEG_INFINITY, 0.0, f64::INFINITY], -1e308), 0);
    }

    #[test]
    fn the_search_agrees_with_a_scan_for_every_count_of_edges() {
        for n in 2..70usize {
            let edges: Vec<f64> = (0..n).map(|i| (i / 3) as f64).collect();
            for k in 0..(4 * n) {
                let v = k as f64 / 4.0 - 0.5;
                let scan = if v < edges[0] || v > edges[n - 1] {
                    n - 1
                } else if v == edges[n - 1] {
                    n - 2
                } else {
                    edges.iter().rposition(|&e| e <= v).unwrap()
                };
                assert_eq!(bin(&edges, v) as usize, scan, "{v} in {edges:?}");
            }
        }
    }

    #[test]
    fn edges_numpy_refuses_are_refused_and_nan_edges_too() {
        assert!(check(&[0.0, 2.0, 1.0]).is_err());
        assert!(check(&[0.0, f64::NAN, 1.0]).is_err());
        assert!(check(&[0.0, 0.0, 0.0]).is_ok());
        assert!(check(&[]).is_ok() && check(&[1.0]).is_ok());
        assert!(check(&vec![0.0; (1 << 20) + 2]).is_err());
    }
}
