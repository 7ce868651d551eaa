//! The vendor's apps, registered with the real `tenantctl`: exact redirect URIs, secrets shown
//! once and stored hashed, public clients without one, and bad input that changes nothing.

use tests::ctl::Ctl;

fn app(ctl: &Ctl, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "client",
        "create",
        "--name",
        "Vendor App",
        "--redirect-uri",
        "https://app.example/callback",
    ];
    args.extend_from_slice(extra);
    ctl.json(&args)
}

#[tokio::test]
async fn apps_are_registered_with_a_secret_shown_once_and_stored_hashed() {
    let data = tempfile::tempdir().unwrap();
    let ctl = Ctl::new(data.path());

    // A confidential app: client_id and client_secret, under exactly these keys.
    let made = app(
        &ctl,
        &[
            "--redirect-uri",
            "http://localhost:3000/cb",
            "--post-logout-redirect-uri",
            "https://app.example/bye",
            "--backchannel-logout-uri",
            "https://app.example/backchannel",
            "--web-origin",
            "https://app.example",
        ],
    );
    let id = made["client_id"].as_str().unwrap().to_owned();
    let secret = made["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43, "{secret}");
    assert_eq!(made["client"]["kind"], "confidential");
    assert_eq!(
        made["client"]["redirect_uris"],
        serde_json::json!(["https://app.example/callback", "http://localhost:3000/cb"])
    );

    // A public app has no secret.
    let spa = app(&ctl, &["--public"]);
    assert!(spa.get("client_secret").is_none(), "{spa}");
    assert_eq!(spa["client"]["kind"], "public");

    // Neither list nor show ever prints the secret; the directory keeps only its hash.
    let listed = ctl.run(&["--json", "client", "list"]);
    let shown = ctl.run(&["--json", "client", "show", &id]);
    assert!(listed.ok() && shown.ok());
    for out in [&listed.stdout, &shown.stdout] {
        assert!(!out.contains(&secret), "{out}");
    }
    assert_eq!(listed.json()["clients"].as_array().unwrap().len(), 2);
    let db = std::fs::read(data.path().join("directory.db")).unwrap();
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the secret is stored in the clear"
    );

    // Rotating gives a new secret; a public app has none to rotate.
    let rotated = ctl.json(&["client", "rotate-secret", &id]);
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let spa_id = spa["client_id"].as_str().unwrap();
    ctl.fails(&["client", "rotate-secret", spa_id], "public_client");

    // Delete needs --yes; then the app is gone.
    ctl.fails(&["client", "delete", &id], "confirmation_required");
    assert!(ctl.run(&["client", "delete", &id, "--yes"]).ok());
    ctl.fails(&["client", "show", &id], "unknown_client");
}

#[tokio::test]
async fn bad_registrations_give_one_clear_line_and_register_nothing() {
    let data = tempfile::tempdir().unwrap();
    let ctl = Ctl::new(data.path());
    let base = ["client", "create", "--name", "App"];
    for (extra, code) in [
        (
            vec!["--redirect-uri", "http://app.example/cb"],
            "invalid_uri",
        ),
        (
            vec!["--redirect-uri", "https://*.app.example/cb"],
            "invalid_uri",
        ),
        (vec!["--redirect-uri", "/cb"], "invalid_uri"),
        (
            vec!["--redirect-uri", "https://app.example/cb#x"],
            "invalid_uri",
        ),
        (
            vec![
                "--redirect-uri",
                "https://app.example/cb",
                "--post-logout-redirect-uri",
                "http://evil.example/",
            ],
            "invalid_uri",
        ),
        (
            vec![
                "--redirect-uri",
                "https://app.example/cb",
                "--web-origin",
                "https://app.example/path",
            ],
            "invalid_origin",
        ),
    ] {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra);
        let out = ctl.fails(&args, code);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    }
    // Without a redirect URI clap refuses before anything runs.
    let out = ctl.run(&base);
    assert!(!out.ok());
    let listed = ctl.json(&["client", "list"]);
    assert_eq!(listed["clients"], serde_json::json!([]));
}
