mod common;
#[test]
fn opens() {
    let Some(ctx) = common::gpu() else { return };
    eprintln!("{}", ctx.describe());
    eprintln!("{:?}", ctx.limits);
    let b = ctx.storage_init("x", &[1.0f32, 2.0, 3.0]).unwrap();
    let v: Vec<f32> = ctx.read(&b, 0, 3).unwrap();
    assert_eq!(v, [1.0, 2.0, 3.0]);
}
