use tenant_runtime::*;
#[test]
fn probe() {
    let dir = tempfile::tempdir().unwrap();
    let r = TenantRouter::new(RouterConfig::new(dir.path())).unwrap();
    for i in 0..50 {
        let id = TenantId::parse(&format!("t{i}")).unwrap();
        r.create_tenant_blocking(&id, 1).unwrap();
    }
    eprintln!("MARK-START");
    let t = std::time::Instant::now();
    for i in 0..50 {
        let id = TenantId::parse(&format!("t{i}")).unwrap();
        r.read_blocking(&id, |c| Ok(store::meta::tenant_id(c)?))
            .unwrap();
    }
    eprintln!("open: {:?}/tenant", t.elapsed() / 50);
    eprintln!("MARK-END");
}
