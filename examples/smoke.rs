use shmpool::{Pool, SharedArray};
fn main() -> shmpool::Result<()> {
    let t = std::time::Instant::now();
    let pool = Pool::new(2)?;
    eprintln!("built in {:?}", t.elapsed());
    let xs = SharedArray::try_from_iter((0..1_000_000).map(|i| i as f64))?;
    let mut ys = SharedArray::zeroed(xs.len())?;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        pool.map_into(&xs, &mut ys, |v: f64| v.sqrt())?;
        eprintln!("map in {:?}", t.elapsed());
    }
    assert_eq!(ys[144], 12.0);
    let r = pool.map_into(&xs, &mut ys, |v: f64| if v == 5000.0 { panic!("boom at {v}") } else { v });
    eprintln!("panic result: {r:?}");
    pool.map_into(&xs, &mut ys, |v: f64| v + 1.0)?;
    assert_eq!(ys[10], 11.0);
    drop(pool);
    eprintln!("dropped");
    Ok(())
}
