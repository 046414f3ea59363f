//! ndarray interop: n-D arrays in shared memory, mapped zero-copy by workers.
#![cfg(feature = "ndarray")]

use ndarray::{Array3, Axis};
use shmpool::{Pool, SharedArray};

#[test]
fn bulk_maps_over_an_n_dimensional_array_match_ndarray() {
    let pool = Pool::new(2).unwrap();
    let a = Array3::from_shape_fn((7, 11, 13), |(i, j, k)| (i * 1000 + j * 10 + k) as f64);
    let x = SharedArray::from_array(&a).unwrap();
    assert_eq!(x.shape(), &[7, 11, 13]);
    assert_eq!(x.as_array(), a.view().into_dyn());

    let y: SharedArray<f64> = pool
        .bulk()
        .chunk_len(50)
        .map_array(&x, |v: f64| v.sqrt() + 1.0)
        .unwrap();
    assert_eq!(y.as_array(), a.mapv(|v| v.sqrt() + 1.0).into_dyn());

    // Views write through to the shared memory the workers read.
    let mut z = SharedArray::<i32>::zeroed(7 * 11)
        .unwrap()
        .reshape(&[7, 11])
        .unwrap();
    z.as_array_mut().index_axis_mut(Axis(0), 3).fill(5);
    pool.for_each_mut(&mut z, |v: &mut i32| *v *= 3).unwrap();
    let sums: Vec<i32> = z.as_array().sum_axis(Axis(1)).iter().copied().collect();
    assert_eq!(sums, vec![0, 0, 0, 165, 0, 0, 0]);
}
