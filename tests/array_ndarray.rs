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
    pool.bulk()
        .for_each_mut(&mut z, |v: &mut i32| *v *= 3)
        .unwrap();
    let sums: Vec<i32> = z.as_array().sum_axis(Axis(1)).iter().copied().collect();
    assert_eq!(sums, vec![0, 0, 0, 165, 0, 0, 0]);
}

#[test]
fn fixed_dimension_views_one_and_n_dimensional() {
    use ndarray::{Ix1, Ix2, Ix3};
    let pool = Pool::new(2).unwrap();
    let mut x = SharedArray::try_from_iter((0..12).map(|i| i as f64))
        .unwrap()
        .reshape(&[3, 4])
        .unwrap();
    // A flat 1-D view of any array, and a 1-D view proper of a 1-D array.
    assert_eq!(x.as_array1().len(), 12);
    assert_eq!(x.as_array1()[11], 11.0);
    let flat = SharedArray::<u8>::zeroed(5).unwrap();
    assert_eq!(flat.as_array_dim::<Ix1>().unwrap().dim(), 5);
    // A typed 2-D view; the wrong number of axes is a typed error.
    let m = x.as_array_dim::<Ix2>().unwrap();
    assert_eq!(m.dim(), (3, 4));
    assert_eq!(m[(2, 1)], 9.0);
    match x.as_array_dim::<Ix3>() {
        Err(shmpool::Error::Dimensionality { shape, axes }) => {
            assert_eq!((shape, axes), (vec![3, 4], 3));
        }
        other => panic!("expected Dimensionality, got {other:?}"),
    }
    // Writes through typed views land where the workers read.
    x.as_array_dim_mut::<Ix2>()
        .unwrap()
        .column_mut(0)
        .fill(-1.0);
    x.as_array1_mut()[1] = 100.0;
    let y: SharedArray<f64> = pool.bulk().map_array(&x, |v: f64| v * 2.0).unwrap();
    let y2 = y.as_array_dim::<Ix2>().unwrap();
    assert_eq!(y2.column(0).to_vec(), vec![-2.0; 3]);
    assert_eq!(y2[(0, 1)], 200.0);
    assert_eq!(y2[(2, 3)], 22.0);
}
