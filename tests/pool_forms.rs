//! Every form of every family, called once and checked: the Python vocabulary of
//! `Tasks` without a context and with one, the array vocabulary of `Bulk` without
//! parameters, with parameters and with context arrays, and `Pool`'s own methods.
//! A family that loses a form fails to compile here; `DistBulk`'s forms (feature
//! `mpi`) are type-checked by `dist_forms`, which needs `mpirun` to run and is run
//! by `tests/cluster_calls.rs`.

use std::ops::Range;
use std::sync::mpsc;

use shmpool::{Bins, Callbacks, Env, Grid, GridMut, Pool, SharedArray};

fn pool() -> Pool {
    Pool::builder().processes(2).max_queued(64).build().unwrap()
}

/// Every form of `Pool`: the lifecycle, Python's names, `map_into`, and the two
/// builders.
#[test]
fn pool_has_every_form() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.processes(), 2);
    assert_eq!(pool.apply(|a: u32, b: u32| a * b, (6, 7)).unwrap(), 42);
    assert_eq!(
        pool.apply_async(|x: u32| x + 1, (1,))
            .unwrap()
            .get()
            .unwrap(),
        2
    );
    assert_eq!(pool.map(|x: u32| x * 2, 0..3u32).unwrap(), [0, 2, 4]);
    assert_eq!(
        pool.map_async(|x: u32| x * 3, 0..3u32)
            .unwrap()
            .get()
            .unwrap(),
        [0, 3, 6]
    );
    assert_eq!(
        pool.starmap(|a: u32, b: u32| a - b, [(3, 1), (5, 2)])
            .unwrap(),
        [2, 3]
    );
    assert_eq!(
        pool.starmap_async(|a: u32, b: u32| a + b, [(3, 1)])
            .unwrap()
            .get()
            .unwrap(),
        [4]
    );
    let ordered: Vec<u32> = pool
        .imap(|x: u32| x + 10, 0..3u32)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ordered, [10, 11, 12]);
    let mut any: Vec<u32> = pool
        .imap_unordered(|x: u32| x + 20, 0..3u32)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    any.sort();
    assert_eq!(any, [20, 21, 22]);
    let x = SharedArray::from_slice(&[1.0f64, 4.0, 9.0]).unwrap();
    let mut y = SharedArray::zeroed(3).unwrap();
    pool.map_into(&x, &mut y, |v: f64| v.sqrt()).unwrap();
    assert_eq!(&y[..], &[1.0, 2.0, 3.0]);
    assert_eq!(pool.bulk().sum(&x).unwrap(), 14.0);
    assert_eq!(pool.tasks().apply(|| 5u8, ()).unwrap(), 5);
    assert!(pool.stats().workers.len() >= 2);
    pool.close();
    pool.join().unwrap();
    pool.terminate();
    drop(Pool::builder().processes(1).build().unwrap());
}

/// A callback pair that reports a success's value.
fn reporting<T: Clone + Send + 'static>() -> (Callbacks<T>, mpsc::Receiver<T>) {
    let (tx, rx) = mpsc::channel();
    let callbacks = Callbacks::new().on_success(move |v: &T| tx.send(v.clone()).unwrap());
    (callbacks, rx)
}

/// Every form of `Tasks`, for functions of the arguments alone: `apply`, `map` and
/// `starmap`, each blocking, `try_`, `_async`, `try_…_async`, `_async_with` and
/// `try_…_async_with`, then `imap` and `imap_unordered`.
#[test]
fn tasks_without_a_context_have_every_form() {
    let pool = pool();
    let t = pool.tasks().chunksize(2);
    let double = |x: u64| 2 * x;
    let add = |a: u64, b: u64| a + b;
    let pairs = [(1u64, 2u64), (3, 4)];

    assert_eq!(t.apply(add, (1, 2)).unwrap(), 3);
    assert_eq!(t.try_apply(add, (2, 2)).unwrap(), 4);
    assert_eq!(t.apply_async(add, (3, 2)).unwrap().get().unwrap(), 5);
    assert_eq!(t.try_apply_async(add, (4, 2)).unwrap().get().unwrap(), 6);
    let (cb, rx) = reporting();
    assert_eq!(
        t.apply_async_with(add, (5, 2), cb).unwrap().get().unwrap(),
        7
    );
    assert_eq!(rx.recv().unwrap(), 7);
    let (cb, rx) = reporting();
    assert_eq!(
        t.try_apply_async_with(add, (6, 2), cb)
            .unwrap()
            .get()
            .unwrap(),
        8
    );
    assert_eq!(rx.recv().unwrap(), 8);

    assert_eq!(t.map(double, 0..3u64).unwrap(), [0, 2, 4]);
    assert_eq!(t.try_map(double, 1..3u64).unwrap(), [2, 4]);
    assert_eq!(t.map_async(double, 2..4u64).unwrap().get().unwrap(), [4, 6]);
    assert_eq!(
        t.try_map_async(double, 3..5u64).unwrap().get().unwrap(),
        [6, 8]
    );
    let (cb, rx) = reporting();
    assert_eq!(
        t.map_async_with(double, [5u64], cb).unwrap().get().unwrap(),
        [10]
    );
    assert_eq!(rx.recv().unwrap(), [10]);
    let (cb, rx) = reporting();
    assert_eq!(
        t.try_map_async_with(double, [6u64], cb)
            .unwrap()
            .get()
            .unwrap(),
        [12]
    );
    assert_eq!(rx.recv().unwrap(), [12]);

    assert_eq!(t.starmap(add, pairs).unwrap(), [3, 7]);
    assert_eq!(t.try_starmap(add, pairs).unwrap(), [3, 7]);
    assert_eq!(t.starmap_async(add, pairs).unwrap().get().unwrap(), [3, 7]);
    assert_eq!(
        t.try_starmap_async(add, pairs).unwrap().get().unwrap(),
        [3, 7]
    );
    let (cb, rx) = reporting();
    assert_eq!(
        t.starmap_async_with(add, pairs, cb).unwrap().get().unwrap(),
        [3, 7]
    );
    assert_eq!(rx.recv().unwrap(), [3, 7]);
    let (cb, rx) = reporting();
    assert_eq!(
        t.try_starmap_async_with(add, pairs, cb)
            .unwrap()
            .get()
            .unwrap(),
        [3, 7]
    );
    assert_eq!(rx.recv().unwrap(), [3, 7]);

    let ordered: Vec<u64> = t
        .imap(double, 0..4u64)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ordered, [0, 2, 4, 6]);
    let mut any: Vec<u64> = t
        .imap_unordered(double, 0..4u64)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    any.sort();
    assert_eq!(any, [0, 2, 4, 6]);
}

/// The same forms with a task context: the function takes `&context` first, then
/// the arguments, spread as without one.
#[test]
fn tasks_with_a_context_have_every_form() {
    let pool = pool();
    let base = vec![100u64, 200];
    let t = pool.tasks().chunksize(2).with(&base);
    let plus = |c: &Vec<u64>, x: u64| c[0] + x;
    let add = |c: &Vec<u64>, a: u64, b: u64| c[1] + a + b;
    let pairs = [(1u64, 2u64), (3, 4)];

    assert_eq!(t.apply(add, (1, 2)).unwrap(), 203);
    assert_eq!(t.try_apply(add, (2, 2)).unwrap(), 204);
    assert_eq!(t.apply_async(add, (3, 2)).unwrap().get().unwrap(), 205);
    assert_eq!(t.try_apply_async(add, (4, 2)).unwrap().get().unwrap(), 206);
    let (cb, rx) = reporting();
    assert_eq!(
        t.apply_async_with(add, (5, 2), cb).unwrap().get().unwrap(),
        207
    );
    assert_eq!(rx.recv().unwrap(), 207);
    let (cb, rx) = reporting();
    assert_eq!(
        t.try_apply_async_with(add, (6, 2), cb)
            .unwrap()
            .get()
            .unwrap(),
        208
    );
    assert_eq!(rx.recv().unwrap(), 208);
    // A function of the context alone takes `()`.
    assert_eq!(t.apply(|c: &Vec<u64>| c.len(), ()).unwrap(), 2);

    assert_eq!(t.map(plus, 0..3u64).unwrap(), [100, 101, 102]);
    assert_eq!(t.try_map(plus, 1..3u64).unwrap(), [101, 102]);
    assert_eq!(
        t.map_async(plus, 2..4u64).unwrap().get().unwrap(),
        [102, 103]
    );
    assert_eq!(
        t.try_map_async(plus, 3..5u64).unwrap().get().unwrap(),
        [103, 104]
    );
    let (cb, rx) = reporting();
    assert_eq!(
        t.map_async_with(plus, [5u64], cb).unwrap().get().unwrap(),
        [105]
    );
    assert_eq!(rx.recv().unwrap(), [105]);
    let (cb, rx) = reporting();
    assert_eq!(
        t.try_map_async_with(plus, [6u64], cb)
            .unwrap()
            .get()
            .unwrap(),
        [106]
    );
    assert_eq!(rx.recv().unwrap(), [106]);

    assert_eq!(t.starmap(add, pairs).unwrap(), [203, 207]);
    assert_eq!(t.try_starmap(add, pairs).unwrap(), [203, 207]);
    assert_eq!(
        t.starmap_async(add, pairs).unwrap().get().unwrap(),
        [203, 207]
    );
    assert_eq!(
        t.try_starmap_async(add, pairs).unwrap().get().unwrap(),
        [203, 207]
    );
    let (cb, rx) = reporting();
    assert_eq!(
        t.starmap_async_with(add, pairs, cb).unwrap().get().unwrap(),
        [203, 207]
    );
    assert_eq!(rx.recv().unwrap(), [203, 207]);
    let (cb, rx) = reporting();
    assert_eq!(
        t.try_starmap_async_with(add, pairs, cb)
            .unwrap()
            .get()
            .unwrap(),
        [203, 207]
    );
    assert_eq!(rx.recv().unwrap(), [203, 207]);

    let ordered: Vec<u64> = t.imap(plus, 0..4u64).unwrap().map(Result::unwrap).collect();
    assert_eq!(ordered, [100, 101, 102, 103]);
    let mut any: Vec<u64> = t
        .imap_unordered(plus, 0..4u64)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    any.sort();
    assert_eq!(any, [100, 101, 102, 103]);
}

/// The inputs every bulk form below uses: `x = 0, 1, ..., 7` and its 2-D view.
fn arrays() -> (SharedArray<f64>, SharedArray<f64>) {
    let x = SharedArray::try_from_iter((0..8).map(f64::from)).unwrap();
    let grid = x.try_clone().unwrap().reshape(&[2, 4]).unwrap();
    (x, grid)
}

/// Every form of `Bulk` with kernels of the elements alone, and numpy's reductions.
#[test]
fn bulk_without_parameters_has_every_form() {
    let pool = pool();
    let (x, grid) = arrays();
    let b = pool.bulk().chunk_len(3);
    let mut y = SharedArray::zeroed(8).unwrap();
    let mut z = SharedArray::zeroed(8).unwrap();

    b.map_into(&x, &mut y, |v: f64| v + 1.0).unwrap();
    assert_eq!(y[7], 8.0);
    b.zip_map_into(
        (&x, &y),
        (&mut z, &mut y.try_clone().unwrap()),
        |(a, b): (f64, f64)| (a * b, b),
    )
    .unwrap();
    assert_eq!(z[3], 12.0);
    assert_eq!(b.map_array(&x, |v: f64| -v).unwrap()[2], -2.0);
    b.map_chunks_into(&x, &mut y, |xs: &[f64], ys: &mut [f64]| {
        ys.copy_from_slice(xs)
    })
    .unwrap();
    assert_eq!(&y[..], &x[..]);
    b.zip_map_chunks_into(
        (&x, &y),
        &mut z,
        |(a, b): (&[f64], &[f64]), zs: &mut [f64]| {
            for ((z, a), b) in zs.iter_mut().zip(a).zip(b) {
                *z = a + b;
            }
        },
    )
    .unwrap();
    assert_eq!(z[5], 10.0);
    b.for_each_mut(&mut y, |v: &mut f64| *v *= 10.0).unwrap();
    assert_eq!(y[2], 20.0);
    b.for_each_chunk_mut(&mut y, |c: &mut [f64]| c.fill(1.0))
        .unwrap();
    assert!(y.iter().all(|&v| v == 1.0));
    b.map_indexed_into(&x, &mut y, |r: Range<usize>, x: &[f64], out: &mut [f64]| {
        for (o, i) in out.iter_mut().zip(r) {
            *o = x[x.len() - 1 - i];
        }
    })
    .unwrap();
    assert_eq!(y[0], 7.0);
    let mut rows = SharedArray::zeroed(8).unwrap().reshape(&[2, 4]).unwrap();
    b.map_rows_into(&grid, &mut rows, |row: &[f64], out: &mut [f64]| {
        out.fill(row.iter().sum())
    })
    .unwrap();
    assert_eq!((rows[0], rows[4]), (6.0, 22.0));
    b.stencil_rows_into(
        &grid,
        &mut rows,
        |r: Range<usize>, x: Grid<f64>, mut y: GridMut<f64>| {
            for row in r {
                y.row_mut(row).copy_from_slice(x.row(1 - row));
            }
        },
    )
    .unwrap();
    assert_eq!(rows[0], 4.0);
    let (_, back, done) = futures::executor::block_on(b.map_into_async(
        x.try_clone().unwrap(),
        SharedArray::zeroed(8).unwrap(),
        |v: f64| v * v,
    ));
    done.unwrap();
    assert_eq!(back[3], 9.0);
    let dot = b
        .map_reduce((&x, &x), 0.0, |(a, b): (f64, f64)| a * b, |p, q| p + q)
        .unwrap();
    assert_eq!(dot, 140.0);
    let count = b
        .fold_reduce(
            &x,
            0u64,
            |acc: &mut u64, xs: &[f64]| *acc += xs.len() as u64,
            |p, q| p + q,
        )
        .unwrap();
    assert_eq!(count, 8);

    assert_eq!(b.sum(&x).unwrap(), 28.0);
    assert_eq!(b.dot(&x, &x).unwrap(), 140.0);
    assert_eq!(b.min(&x).unwrap(), Some(0.0));
    assert_eq!(b.max(&x).unwrap(), Some(7.0));
    assert_eq!(b.argmin(&x).unwrap(), Some(0));
    assert_eq!(b.argmax(&x).unwrap(), Some(7));
    assert_eq!(
        b.histogram(
            &x,
            Bins::Uniform {
                count: 2,
                range: (0.0, 8.0)
            }
        )
        .unwrap()
        .counts,
        [4, 4]
    );
}

/// Every form of `Bulk` with a parameter: each kernel takes `&P` first.
#[test]
fn bulk_with_parameters_has_every_form() {
    let pool = pool();
    let (x, grid) = arrays();
    let b = pool.bulk().chunk_len(3).with(2.0f64);
    let mut y = SharedArray::zeroed(8).unwrap();
    let mut z = SharedArray::zeroed(8).unwrap();

    b.map_into(&x, &mut y, |k: &f64, v: f64| k * v).unwrap();
    assert_eq!(y[7], 14.0);
    b.zip_map_into((&x, &y), &mut z, |k: &f64, (a, b): (f64, f64)| k * a + b)
        .unwrap();
    assert_eq!(z[1], 4.0);
    assert_eq!(b.map_array(&x, |k: &f64, v: f64| v - k).unwrap()[2], 0.0);
    b.map_chunks_into(&x, &mut y, |k: &f64, xs: &[f64], ys: &mut [f64]| {
        for (y, x) in ys.iter_mut().zip(xs) {
            *y = x / k;
        }
    })
    .unwrap();
    assert_eq!(y[4], 2.0);
    b.zip_map_chunks_into(
        (&x, &y),
        &mut z,
        |k: &f64, (a, b): (&[f64], &[f64]), zs: &mut [f64]| {
            for ((z, a), b) in zs.iter_mut().zip(a).zip(b) {
                *z = a - k * b;
            }
        },
    )
    .unwrap();
    assert!(z.iter().all(|&v| v == 0.0));
    b.for_each_mut(&mut y, |k: &f64, v: &mut f64| *v += k)
        .unwrap();
    assert_eq!(y[0], 2.0);
    b.for_each_chunk_mut(&mut y, |k: &f64, c: &mut [f64]| c.fill(*k))
        .unwrap();
    assert!(y.iter().all(|&v| v == 2.0));
    b.map_indexed_into(
        &x,
        &mut y,
        |k: &f64, r: Range<usize>, x: &[f64], out: &mut [f64]| {
            for (o, i) in out.iter_mut().zip(r) {
                *o = k * x[i];
            }
        },
    )
    .unwrap();
    assert_eq!(y[3], 6.0);
    let mut rows = SharedArray::zeroed(8).unwrap().reshape(&[2, 4]).unwrap();
    b.map_rows_into(&grid, &mut rows, |k: &f64, row: &[f64], out: &mut [f64]| {
        out.fill(k * row[0])
    })
    .unwrap();
    assert_eq!((rows[0], rows[4]), (0.0, 8.0));
    b.stencil_rows_into(
        &grid,
        &mut rows,
        |k: &f64, r: Range<usize>, x: Grid<f64>, mut y: GridMut<f64>| {
            for row in r {
                for (o, v) in y.row_mut(row).iter_mut().zip(x.row(row)) {
                    *o = k + v;
                }
            }
        },
    )
    .unwrap();
    assert_eq!(rows[7], 9.0);
    let (_, back, done) = futures::executor::block_on(b.map_into_async(
        x.try_clone().unwrap(),
        SharedArray::zeroed(8).unwrap(),
        |k: &f64, v: f64| k + v,
    ));
    done.unwrap();
    assert_eq!(back[3], 5.0);
    let total = b
        .map_reduce(&x, 0.0, |k: &f64, v: f64| k * v, |p, q| p + q)
        .unwrap();
    assert_eq!(total, 56.0);
    let above = b
        .fold_reduce(
            &x,
            0u64,
            |k: &f64, acc: &mut u64, xs: &[f64]| {
                *acc += xs.iter().filter(|&&v| v > *k).count() as u64
            },
            |p, q| p + q,
        )
        .unwrap();
    assert_eq!(above, 5);
}

/// Every form of `Bulk` with a context array (and parameters): each kernel takes an
/// `Env` first.
#[test]
fn bulk_with_context_arrays_has_every_form() {
    let pool = pool();
    let (x, grid) = arrays();
    let table = SharedArray::from_slice(&[10.0f64, 20.0]).unwrap();
    let b = pool.bulk().chunk_len(3).with(1.0f64).context(&table);
    let mut y = SharedArray::zeroed(8).unwrap();
    let mut z = SharedArray::zeroed(8).unwrap();

    b.map_into(&x, &mut y, |env: &Env<f64>, v: f64| {
        env.array::<f64>(0)[0] + v
    })
    .unwrap();
    assert_eq!(y[7], 17.0);
    b.zip_map_into((&x, &y), &mut z, |env: &Env<f64>, (a, b): (f64, f64)| {
        **env + b - a
    })
    .unwrap();
    assert!(z.iter().all(|&v| v == 11.0));
    assert_eq!(
        b.map_array(&x, |env: &Env<f64>, v: f64| env.array::<f64>(0)[1] * v)
            .unwrap()[2],
        40.0
    );
    b.map_chunks_into(&x, &mut y, |env: &Env<f64>, xs: &[f64], ys: &mut [f64]| {
        for (y, x) in ys.iter_mut().zip(xs) {
            *y = x + env.arrays() as f64;
        }
    })
    .unwrap();
    assert_eq!(y[0], 1.0);
    b.zip_map_chunks_into(
        (&x, &y),
        &mut z,
        |_: &Env<f64>, (a, b): (&[f64], &[f64]), zs: &mut [f64]| {
            for ((z, a), b) in zs.iter_mut().zip(a).zip(b) {
                *z = b - a;
            }
        },
    )
    .unwrap();
    assert!(z.iter().all(|&v| v == 1.0));
    b.for_each_mut(&mut y, |env: &Env<f64>, v: &mut f64| {
        *v = env.array::<f64>(0)[0]
    })
    .unwrap();
    assert!(y.iter().all(|&v| v == 10.0));
    b.for_each_chunk_mut(&mut y, |env: &Env<f64>, c: &mut [f64]| c.fill(**env))
        .unwrap();
    assert!(y.iter().all(|&v| v == 1.0));
    b.map_indexed_into(
        &x,
        &mut y,
        |env: &Env<f64>, r: Range<usize>, x: &[f64], out: &mut [f64]| {
            for (o, i) in out.iter_mut().zip(r) {
                *o = x[i] * env.array::<f64>(0)[1];
            }
        },
    )
    .unwrap();
    assert_eq!(y[3], 60.0);
    let mut rows = SharedArray::zeroed(8).unwrap().reshape(&[2, 4]).unwrap();
    b.map_rows_into(
        &grid,
        &mut rows,
        |env: &Env<f64>, row: &[f64], out: &mut [f64]| out.fill(row[0] + env.array::<f64>(0)[0]),
    )
    .unwrap();
    assert_eq!((rows[0], rows[4]), (10.0, 14.0));
    b.stencil_rows_into(
        &grid,
        &mut rows,
        |env: &Env<f64>, r: Range<usize>, x: Grid<f64>, mut y: GridMut<f64>| {
            for row in r {
                y.row_mut(row).fill(x.row(row)[3] * **env);
            }
        },
    )
    .unwrap();
    assert_eq!((rows[0], rows[4]), (3.0, 7.0));
    let (_, back, done) = futures::executor::block_on(b.map_into_async(
        x.try_clone().unwrap(),
        SharedArray::zeroed(8).unwrap(),
        |env: &Env<f64>, v: f64| env.array::<f64>(0)[1] - v,
    ));
    done.unwrap();
    assert_eq!(back[3], 17.0);
    let total = b
        .map_reduce(&x, 0.0, |env: &Env<f64>, v: f64| v * **env, |p, q| p + q)
        .unwrap();
    assert_eq!(total, 28.0);
    let under = b
        .fold_reduce(
            &x,
            0u64,
            |env: &Env<f64>, acc: &mut u64, xs: &[f64]| {
                *acc += xs
                    .iter()
                    .filter(|&&v| v < env.array::<f64>(0)[0] / 2.0)
                    .count() as u64
            },
            |p, q| p + q,
        )
        .unwrap();
    assert_eq!(under, 5);
    // Context arrays without parameters, and parameters added after them.
    let b = pool.bulk().context(&table);
    b.map_into(&x, &mut y, |env: &Env<()>, v: f64| {
        v + env.array::<f64>(0)[0]
    })
    .unwrap();
    assert_eq!(y[1], 11.0);
    let b = pool.bulk().context(&table).with(3.0f64).context(&x);
    b.map_into(&x, &mut y, |env: &Env<f64>, v: f64| {
        v * **env + env.array::<f64>(1)[7]
    })
    .unwrap();
    assert_eq!(y[1], 10.0);
}

/// Every form of `DistBulk` (feature `mpi`), without parameters and with them.
/// Type-checked here; running them takes `mpirun`, and `tests/cluster_calls.rs` does.
#[cfg(feature = "mpi")]
#[allow(dead_code)]
fn dist_forms(cluster: &shmpool::Cluster) -> shmpool::Result<()> {
    use shmpool::{DistArray, DistGrid, RowFrame};
    let x = DistArray::from_fn(cluster, 8, |i| i as f64)?;
    let b = cluster
        .bulk()
        .chunk_len(2)
        .retries(1)
        .chunk_timeout(std::time::Duration::from_secs(60));
    b.map_reduce((&x, &x), 0.0, |(a, b): (f64, f64)| a * b, |p, q| p + q)?;
    b.fold_reduce(
        &x,
        0u64,
        |acc: &mut u64, xs: &[f64]| *acc += xs.len() as u64,
        |p, q| p + q,
    )?;
    b.sum(&x)?;
    b.dot(&x, &x)?;
    b.min(&x)?;
    b.max(&x)?;
    b.argmin(&x)?;
    b.argmax(&x)?;
    b.histogram(
        &x,
        Bins::Uniform {
            count: 2,
            range: (0.0, 8.0),
        },
    )?;
    let g = DistGrid::<f64>::zeroed(cluster, 4, 4, 1)?;
    let mut h = DistGrid::<f64>::zeroed(cluster, 4, 4, 1)?;
    b.stencil_rows_into(
        &g,
        &mut h,
        |_: &RowFrame, r: Range<usize>, x: Grid<f64>, mut y: GridMut<f64>| {
            for row in r {
                y.row_mut(row).copy_from_slice(x.row(row));
            }
        },
    )?;
    let p = b.with(2.0f64);
    p.map_reduce(&x, 0.0, |k: &f64, v: f64| k * v, |a, b| a + b)?;
    p.fold_reduce(
        &x,
        0u64,
        |k: &f64, acc: &mut u64, xs: &[f64]| *acc += xs.iter().filter(|&&v| v > *k).count() as u64,
        |a, b| a + b,
    )?;
    Ok(())
}
