//! The Azurite test harness itself: it starts strict Azurite on loopback, signs SharedKey
//! requests the way the service checks them, gives each test a fresh container, and stops
//! the process it started.

mod support;

use std::time::{Duration, UNIX_EPOCH};
use support::azurite::{http_date, Azurite};

#[test]
fn http_date_formats_rfc_1123() {
    let t = UNIX_EPOCH + Duration::from_secs(1_795_435_200);
    assert_eq!(http_date(t), "Mon, 23 Nov 2026 12:00:00 GMT");
    assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
    assert_eq!(http_date(leap), "Tue, 29 Feb 2000 00:00:00 GMT");
}

#[test]
fn starts_creates_fresh_containers_and_stops() {
    let Some(az) = Azurite::start() else { return };
    let a = az.fresh_container("t");
    let b = az.fresh_container("t");
    assert_ne!(a, b);
    let list = az.request("GET", "/?comp=list", &[]).unwrap();
    assert_eq!(list.status, 200);
    assert!(
        list.body.contains(&format!("<Name>{a}</Name>")),
        "{}",
        list.body
    );
    assert!(
        list.body.contains(&format!("<Name>{b}</Name>")),
        "{}",
        list.body
    );
    // Creating an existing container is refused, as by the service.
    let again = az
        .request("PUT", &format!("/{a}?restype=container"), &[])
        .unwrap();
    assert_eq!(again.status, 409);

    // Strict: a request signed with the wrong key is refused.
    let wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";
    let r = az
        .request_with_key("GET", "/?comp=list", &[], wrong)
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.body);

    let pid = az.pid();
    drop(az);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "Azurite (pid {pid}) still running after drop"
    );
}
