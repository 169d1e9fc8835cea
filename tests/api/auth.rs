use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use civicsnap::domain::role::Role;
use civicsnap::state::now;
use civicsnap::store::NewUser;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

/// Asks for a code for `phone` and brings it back: the token endpoint's answer.
async fn send_back_code(app: &TestApp, phone: &str) -> reqwest::Response {
    let sent = app
        .post_json("/api/v1/auth/otp", None, &json!({ "phone": phone }))
        .await;
    assert_eq!(sent.status(), 202);
    let code = app.sms.last_code(phone).expect("code sent");
    app.post_json(
        "/api/v1/auth/token",
        None,
        &json!({"grant_type": "otp", "phone": phone, "code": code}),
    )
    .await
}

async fn sign_in_by_otp(app: &TestApp, phone: &str) -> Value {
    let response = send_back_code(app, phone).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn citizen_signs_in_by_phone_and_the_phone_stays_private() {
    let app = spawn_app().await;
    let tokens = sign_in_by_otp(&app, "138 1234 5678").await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["expires_in"].as_i64().unwrap() > 0);
    let access = tokens["access_token"].as_str().unwrap();
    // The token works, and the account is a citizen account.
    let mine = app.get("/api/v1/me/reports", Some(access)).await;
    assert_eq!(mine.status(), 200);
    let claims = app.state.jwt.verify(access).unwrap();
    assert_eq!(claims.role, Role::Citizen);
    // Signing in again reaches the same account.
    let again = sign_in_by_otp(&app, "+8613812345678").await;
    let again = app
        .state
        .jwt
        .verify(again["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(again.sub, claims.sub);
    // The phone is in no token.
    let payload = access.split('.').nth(1).unwrap();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert!(!payload.contains("13812345678"), "{payload}");
}

#[tokio::test]
async fn wrong_codes_burn_the_code() {
    let app = spawn_app().await;
    app.post_json("/api/v1/auth/otp", None, &json!({"phone": "13900000001"}))
        .await;
    let good = app.sms.last_code("13900000001").unwrap();
    let wrong = if good == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let r = app
            .post_json(
                "/api/v1/auth/token",
                None,
                &json!({"grant_type": "otp", "phone": "13900000001", "code": wrong}),
            )
            .await;
        assert_problem(r, 400, "invalid_grant").await;
    }
    // Sixth try, even with the right code: the code is gone.
    let r = app
        .post_json(
            "/api/v1/auth/token",
            None,
            &json!({"grant_type": "otp", "phone": "13900000001", "code": good}),
        )
        .await;
    assert_problem(r, 400, "invalid_grant").await;
}

#[tokio::test]
async fn otp_requests_are_rate_limited_and_validated() {
    let app = spawn_app().await;
    assert_eq!(
        app.post_json("/api/v1/auth/otp", None, &json!({"phone": "13900000002"}))
            .await
            .status(),
        202
    );
    let again = app
        .post_json("/api/v1/auth/otp", None, &json!({"phone": "13900000002"}))
        .await;
    assert!(again.headers().contains_key("retry-after"));
    assert_problem(again, 429, "rate_limited").await;
    let bad = app
        .post_json("/api/v1/auth/otp", None, &json!({"phone": "12345"}))
        .await;
    let body = assert_problem(bad, 422, "invalid_phone").await;
    assert_eq!(body["field"], "phone");
}

#[tokio::test]
async fn otp_requests_per_client_are_capped() {
    let app = spawn_app_with(|s| s.auth.otp_per_ip_per_minute = 3).await;
    for i in 0..3 {
        let phone = format!("1390000010{i}");
        assert_eq!(
            app.post_json("/api/v1/auth/otp", None, &json!({"phone": phone}))
                .await
                .status(),
            202
        );
    }
    // Without trusted proxies configured, a client cannot pose as another.
    let r = app
        .client
        .post(app.url("/api/v1/auth/otp"))
        .header("x-forwarded-for", "198.51.100.77")
        .json(&json!({"phone": "13900000109"}))
        .send()
        .await
        .expect("request");
    assert_problem(r, 429, "rate_limited").await;
}

#[tokio::test]
async fn codes_to_one_phone_are_capped_per_day() {
    let app = spawn_app_with(|s| {
        s.auth.otp_per_phone_per_day = 2;
        s.auth.otp_resend_secs = 0;
    })
    .await;
    let body = json!({"phone": "13900000301"});
    let ask = || app.post_json("/api/v1/auth/otp", None, &body);
    assert_eq!(ask().await.status(), 202);
    assert_eq!(ask().await.status(), 202);
    let refused = ask().await;
    let retry_after: u64 = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!(retry_after <= 24 * 3600);
    assert_problem(refused, 429, "rate_limited").await;
    // Another phone is not affected.
    assert_eq!(
        app.post_json("/api/v1/auth/otp", None, &json!({"phone": "13900000302"}))
            .await
            .status(),
        202
    );
}

#[tokio::test]
async fn password_guessing_is_capped_per_client() {
    let app = spawn_app_with(|s| s.auth.token_per_ip_per_minute = 3).await;
    // The limit counts per minute: start well inside one.
    let window = civicsnap::auth::otp::RequestWindow::containing(chrono::Utc::now());
    let left = window.seconds_left(chrono::Utc::now());
    if left < 10 {
        tokio::time::sleep(std::time::Duration::from_secs(left)).await;
    }
    let guess = |password: &'static str| {
        let app = &app;
        async move {
            let body =
                json!({"grant_type": "password", "username": "demo-admin", "password": password});
            app.post_json("/api/v1/auth/token", None, &body).await
        }
    };
    for attempt in ["123456", "password", "admin123"] {
        assert_problem(guess(attempt).await, 400, "invalid_grant").await;
    }
    let refused = guess("civicsnap").await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_problem(refused, 429, "rate_limited").await;
}

/// Guesses spread over many addresses, one after another or all at once, still
/// meet the account's own limit: past it even the right password waits for the
/// next quarter hour, while other accounts sign in as usual.
#[tokio::test]
async fn wrong_passwords_are_capped_per_account_from_any_address() {
    let app = spawn_app_with(|s| {
        s.auth.password_attempts_per_account = 3;
        s.server.trusted_proxies = vec!["127.0.0.0/8".parse().expect("network")];
    })
    .await;
    operator_with_password(&app, "night-officer", "the right password").await;
    operator_with_password(&app, "day-officer", "another right password").await;
    // The limit counts per quarter hour: start well inside one.
    let window = civicsnap::auth::otp::RequestWindow::quarter_hour_containing(chrono::Utc::now());
    let left = window.seconds_left(chrono::Utc::now());
    if left < 20 {
        tokio::time::sleep(std::time::Duration::from_secs(left)).await;
    }
    let sign_in = |client: &'static str, username: &'static str, password: &'static str| {
        app.client
            .post(app.url("/api/v1/auth/token"))
            .header("x-forwarded-for", client)
            .json(&json!({"grant_type": "password", "username": username, "password": password}))
            .send()
    };
    for (client, guess) in [
        ("203.0.113.1", "123456"),
        ("203.0.113.2", "password"),
        ("203.0.113.3", "qwerty"),
    ] {
        let refused = sign_in(client, "night-officer", guess).await.unwrap();
        assert_problem(refused, 400, "invalid_grant").await;
    }
    let locked = sign_in("198.51.100.7", "night-officer", "the right password")
        .await
        .unwrap();
    let retry_after: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_problem(locked, 429, "rate_limited").await;
    let other = sign_in("203.0.113.1", "day-officer", "another right password")
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    // An unknown username is counted the same way, so the limit does not tell
    // which accounts exist.
    for _ in 0..3 {
        let refused = sign_in("203.0.113.4", "no-such-officer", "guess")
            .await
            .unwrap();
        assert_problem(refused, 400, "invalid_grant").await;
    }
    let locked = sign_in("203.0.113.4", "no-such-officer", "guess")
        .await
        .unwrap();
    assert_problem(locked, 429, "rate_limited").await;
}

/// Behind a reverse proxy every request comes from the proxy; with the proxy
/// listed as trusted, each citizen is counted by the address it forwards, and
/// the count is shared by every instance.
#[tokio::test]
async fn otp_requests_behind_a_trusted_proxy_are_counted_per_client_across_instances() {
    let app = spawn_app_with(|s| {
        s.auth.otp_per_ip_per_minute = 2;
        s.server.trusted_proxies = vec!["127.0.0.0/8".parse().expect("network")];
    })
    .await;
    let other = app.second_instance().await;
    let ask = |instance: &TestApp, client: &str, phone: &str| {
        instance
            .client
            .post(instance.url("/api/v1/auth/otp"))
            .header("x-forwarded-for", client)
            .json(&json!({ "phone": phone }))
            .send()
    };
    // The limit counts per minute: start well inside one.
    let window = civicsnap::auth::otp::RequestWindow::containing(chrono::Utc::now());
    let left = window.seconds_left(chrono::Utc::now());
    if left < 10 {
        tokio::time::sleep(std::time::Duration::from_secs(left)).await;
    }

    let first = "198.51.100.1";
    assert_eq!(ask(&app, first, "13900000201").await.unwrap().status(), 202);
    assert_eq!(
        ask(&other, first, "13900000202").await.unwrap().status(),
        202
    );
    let refused = ask(&app, first, "13900000203").await.unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    assert_problem(refused, 429, "rate_limited").await;
    let refused = ask(&other, first, "13900000203").await.unwrap();
    assert_problem(refused, 429, "rate_limited").await;

    // Another citizen behind the same proxy still gets a code.
    assert_eq!(
        ask(&other, "198.51.100.2", "13900000204")
            .await
            .unwrap()
            .status(),
        202
    );
}

/// An operator account signing in with `password`.
async fn operator_with_password(app: &TestApp, username: &str, password: &str) {
    let hash = civicsnap::auth::hash_password(password).unwrap();
    app.state
        .repo
        .create_user(&NewUser {
            id: Uuid::now_v7(),
            role: Role::Operator,
            unit_id: None,
            username: Some(username.into()),
            password_hash: Some(hash),
            phone: None,
            display_name: Some("值班长".into()),
            created_at: now(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn staff_sign_in_with_password() {
    let app = spawn_app().await;
    operator_with_password(&app, "duty-officer", "a long enough password").await;
    let ok = app
        .post_json("/api/v1/auth/token", None, &json!({"grant_type": "password", "username": "duty-officer", "password": "a long enough password"}))
        .await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(
        app.state
            .jwt
            .verify(body["access_token"].as_str().unwrap())
            .unwrap()
            .role,
        Role::Operator
    );
    for (username, password) in [
        ("duty-officer", "wrong password"),
        ("nobody", "a long enough password"),
    ] {
        let r = app
            .post_json(
                "/api/v1/auth/token",
                None,
                &json!({"grant_type": "password", "username": username, "password": password}),
            )
            .await;
        assert_problem(r, 400, "invalid_grant").await;
    }
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reuse_revokes_the_family() {
    let app = spawn_app().await;
    let first = sign_in_by_otp(&app, "13900000003").await;
    let refresh = |token: &str| json!({"grant_type": "refresh_token", "refresh_token": token});
    let second: Value = app
        .post_json(
            "/api/v1/auth/token",
            None,
            &refresh(first["refresh_token"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    let second_refresh = second["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_owned();
    assert_ne!(second_refresh, first["refresh_token"].as_str().unwrap());
    // Replaying the first token is theft: refused, and the whole family dies.
    let replay = app
        .post_json(
            "/api/v1/auth/token",
            None,
            &refresh(first["refresh_token"].as_str().unwrap()),
        )
        .await;
    assert_problem(replay, 400, "invalid_grant").await;
    let after = app
        .post_json("/api/v1/auth/token", None, &refresh(&second_refresh))
        .await;
    assert_problem(after, 400, "invalid_grant").await;
    let garbage = app
        .post_json("/api/v1/auth/token", None, &refresh("not-a-token"))
        .await;
    assert_problem(garbage, 400, "invalid_grant").await;
}

#[tokio::test]
async fn bad_tokens_get_401_with_a_challenge() {
    let app = spawn_app().await;
    let caller = app.citizen().await;
    let expired = app
        .state
        .jwt
        .issue(
            caller.id,
            Role::Citizen,
            None,
            now() - chrono::Duration::hours(1),
            60,
        )
        .unwrap();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(
        json!({"sub": caller.id.to_string(), "role": "admin", "iss": "civicsnap", "aud": "civicsnap-api", "iat": 0, "exp": 4_000_000_000_i64}).to_string(),
    );
    let unsigned = format!("{header}.{body}.");
    for token in [
        Some(expired.as_str()),
        Some(unsigned.as_str()),
        Some("garbage"),
        None,
    ] {
        let response = app.get("/api/v1/me/reports", token).await;
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "{token:?}");
        // RFC 6750 §3.1: no error code when no credentials were sent.
        assert_eq!(
            challenge.contains(r#"error="invalid_token""#),
            token.is_some(),
            "{token:?}: {challenge}"
        );
        assert_problem(response, 401, "unauthorized").await;
    }
}

#[tokio::test]
async fn another_authorization_scheme_is_anonymous_not_an_error() {
    let app = spawn_app().await;
    let with = |path: &str, authorization: &str| {
        app.client
            .get(app.url(path))
            .header("authorization", authorization.to_owned())
            .send()
    };
    // A gateway's Basic credentials do not break public endpoints…
    let public = with("/api/v1/categories", "Basic Z2F0ZXdheTpzZWNyZXQ=")
        .await
        .expect("answered");
    assert_eq!(public.status(), 200);
    // …and elsewhere count as no token: a challenge without an error code.
    let private = with("/api/v1/me/reports", "Basic Z2F0ZXdheTpzZWNyZXQ=")
        .await
        .expect("answered");
    let challenge = private
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    assert_eq!(challenge, r#"Bearer realm="civicsnap""#);
    assert_problem(private, 401, "unauthorized").await;
    // The scheme is case-insensitive; an empty bearer token is a bad one.
    let caller = app.citizen().await;
    let shouted = with("/api/v1/me/reports", &format!("BEARER {}", caller.token))
        .await
        .expect("answered");
    assert_eq!(shouted.status(), 200);
    let empty = with("/api/v1/me/reports", "Bearer ")
        .await
        .expect("answered");
    assert_problem(empty, 401, "unauthorized").await;
}

#[tokio::test]
async fn a_failing_sms_gateway_is_a_503_that_keeps_its_reply_to_the_log_and_a_retry_is_not_too_soon()
 {
    // One code a day: a code the gateway failed to send must not use it up.
    let app = spawn_app_with(|s| s.auth.otp_per_phone_per_day = 1).await;
    app.sms
        .fail_with("gateway 10.20.30.40:8443 refused account AK-7f3e: balance exhausted");
    let response = app
        .post_json("/api/v1/auth/otp", None, &json!({"phone": "13800000042"}))
        .await;
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("30")
    );
    let problem = assert_problem(response, 503, "unavailable").await;
    let text = problem.to_string();
    assert!(
        !text.contains("10.20.30.40") && !text.contains("AK-7f3e"),
        "{problem}"
    );
    // No code reached the phone, so asking again at once is not "too soon".
    app.sms.recover();
    let retry = app
        .post_json("/api/v1/auth/otp", None, &json!({"phone": "13800000042"}))
        .await;
    assert_eq!(retry.status(), 202);
    assert!(app.sms.last_code("13800000042").is_some());
}

#[tokio::test]
async fn malformed_token_requests_are_problems() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "malformed_json").await;
    let r = app
        .post_json(
            "/api/v1/auth/token",
            None,
            &json!({"grant_type": "client_credentials"}),
        )
        .await;
    assert_problem(r, 422, "invalid_body").await;
    let r = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_problem(r, 415, "unsupported_media_type").await;
    // JSON followed by anything else is not JSON.
    let r = app
        .client
        .post(app.url("/api/v1/auth/otp"))
        .header("content-type", "application/json")
        .body(r#"{"phone": "13800000043"} {}"#)
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "malformed_json").await;
}

/// A body sent gzip-compressed is unpacked before it is read, and its limit
/// counts the unpacked bytes.
#[tokio::test]
async fn gzipped_json_bodies_are_read() {
    use std::io::Write;
    let app = spawn_app().await;
    let gzip = |body: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(body).unwrap();
        encoder.finish().unwrap()
    };
    let send = |body: Vec<u8>| {
        app.client
            .post(app.url("/api/v1/auth/otp"))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(body)
            .send()
    };
    let sent = send(gzip(br#"{"phone": "13800000044"}"#)).await.unwrap();
    assert_eq!(sent.status(), 202);
    assert!(app.sms.last_code("13800000044").is_some());
    // Eight MiB of spaces pack into a few kilobytes; unpacked, they are over
    // the JSON limit.
    let padded = format!(r#"{{"phone": "13800000045"{}}}"#, " ".repeat(8 << 20));
    let packed = gzip(padded.as_bytes());
    assert!(packed.len() < 64 * 1024);
    assert_problem(send(packed).await.unwrap(), 413, "body_too_large").await;
}

/// What the sign_in_purge job removes: codes and refresh tokens past their
/// expiry, request counts of past minutes; nothing still in use.
#[tokio::test]
async fn expired_sign_in_records_are_purged_and_live_ones_kept() {
    let app = spawn_app().await;
    let repo = &app.state.repo;
    let now = now();
    let earlier = now - chrono::Duration::minutes(10);
    let expired = civicsnap::domain::phone::Phone::parse("13900000301").unwrap();
    let live = civicsnap::domain::phone::Phone::parse("13900000302").unwrap();
    let resend = chrono::Duration::seconds(60);
    let ttl = chrono::Duration::minutes(5);
    assert!(
        repo.put_otp(&expired, "h1", earlier, earlier + ttl, earlier - resend)
            .await
            .unwrap()
    );
    assert!(
        repo.put_otp(&live, "h2", now, now + ttl, now - resend)
            .await
            .unwrap()
    );
    let citizen = app.citizen().await;
    for (hash, expires_at) in [("old", earlier), ("current", now + ttl)] {
        repo.insert_refresh_token(&civicsnap::store::NewRefreshToken {
            token_hash: hash.into(),
            family_id: Uuid::now_v7(),
            user_id: citizen.id,
            expires_at,
            created_at: earlier,
        })
        .await
        .unwrap();
    }
    let client = "198.51.100.9";
    assert_eq!(repo.count_client_request(client, earlier).await.unwrap(), 1);
    assert_eq!(repo.count_client_request(client, now).await.unwrap(), 1);

    // The job itself runs once at start-up and may overlap this test; what
    // counts is what is left afterwards.
    repo.purge_sign_in_records(now, now - chrono::Duration::minutes(5))
        .await
        .unwrap();
    assert!(repo.count_otp_attempt(&expired).await.unwrap().is_none());
    assert!(repo.count_otp_attempt(&live).await.unwrap().is_some());
    assert_eq!(repo.count_client_request(client, now).await.unwrap(), 2);
    assert_eq!(repo.count_client_request(client, earlier).await.unwrap(), 1);
    // A token hash can be stored again only once the old row is gone.
    let again = |hash: &'static str| civicsnap::store::NewRefreshToken {
        token_hash: hash.into(),
        family_id: Uuid::now_v7(),
        user_id: citizen.id,
        expires_at: now + ttl,
        created_at: now,
    };
    assert!(repo.insert_refresh_token(&again("old")).await.is_ok());
    assert!(repo.insert_refresh_token(&again("current")).await.is_err());
}

#[tokio::test]
async fn a_one_time_code_signs_in_once_even_when_sent_twice_at_once() {
    let app = spawn_app().await;
    let phone = "13900000777";
    let sent = app
        .post_json("/api/v1/auth/otp", None, &json!({ "phone": phone }))
        .await;
    assert_eq!(sent.status(), 202);
    let code = app.sms.last_code(phone).expect("code sent");
    let body = json!({"grant_type": "otp", "phone": phone, "code": code});
    let requests = (0..5).map(|_| app.post_json("/api/v1/auth/token", None, &body));
    let statuses: Vec<u16> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    let signed_in = statuses.iter().filter(|&&s| s == 200).count();
    assert_eq!(signed_in, 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 400),
        "{statuses:?}"
    );
}

/// A replay of an old refresh token revokes its family, including the token a
/// rotation of the family's newest one issues at the same moment: otherwise
/// whoever holds that newest token keeps a live family after the theft showed.
/// SQLite's write transactions take turns, so the race is PostgreSQL's (run with
/// `TEST_POSTGRES_URL`), where every round of it used to let the successor live.
#[tokio::test]
async fn a_replay_racing_a_rotation_revokes_the_token_the_rotation_issues() {
    use civicsnap::auth::RefreshTokens;
    use civicsnap::store::{NewRefreshToken, Rotation};
    let app = spawn_app().await;
    let repo = app.state.repo.clone();
    let user = app.citizen().await;
    let hash = RefreshTokens::hash;
    let mut escaped = 0;
    for _ in 0..40 {
        let at = now();
        let later = at + chrono::Duration::days(1);
        let old = RefreshTokens::generate();
        repo.insert_refresh_token(&NewRefreshToken {
            token_hash: hash(&old),
            family_id: Uuid::now_v7(),
            user_id: user.id,
            expires_at: later,
            created_at: at,
        })
        .await
        .unwrap();
        let current = RefreshTokens::generate();
        let rotated = repo
            .rotate_refresh_token(&hash(&old), &hash(&current), later, at)
            .await
            .unwrap();
        assert!(matches!(rotated, Rotation::Rotated(_)));
        // The old token comes back just as the current one is rotated.
        let next = RefreshTokens::generate();
        let (old_hash, current_hash, next_hash) = (hash(&old), hash(&current), hash(&next));
        let unused = hash(&RefreshTokens::generate());
        let (replay, rotation) = tokio::join!(
            repo.rotate_refresh_token(&old_hash, &unused, later, at),
            repo.rotate_refresh_token(&current_hash, &next_hash, later, at),
        );
        assert!(matches!(replay.unwrap(), Rotation::Reused));
        if let Rotation::Rotated(_) = rotation.unwrap() {
            let after = repo
                .rotate_refresh_token(&hash(&next), &hash(&RefreshTokens::generate()), later, at)
                .await
                .unwrap();
            if !matches!(after, Rotation::Invalid) {
                escaped += 1;
            }
        }
    }
    assert_eq!(
        escaped, 0,
        "rotations that outlived the family's revocation"
    );
}

/// A one-time code proves only that the caller holds the phone. A staff account
/// that was given the same number keeps its rights behind its password.
#[tokio::test]
async fn a_code_never_opens_a_staff_account_that_has_the_phone() {
    let app = spawn_app().await;
    let phone = "13900000077";
    let operator = app
        .state
        .repo
        .create_user(&NewUser {
            id: Uuid::now_v7(),
            role: Role::Operator,
            unit_id: None,
            username: Some("operator-with-phone".into()),
            password_hash: None,
            phone: Some(civicsnap::domain::phone::Phone::parse(phone).expect("a phone")),
            display_name: None,
            created_at: now(),
        })
        .await
        .expect("operator");
    let response = send_back_code(&app, phone).await;
    let problem = assert_problem(response, 400, "invalid_grant").await;
    assert_detail_mentions(&problem, "staff account");
    let stored = app.state.repo.user_by_id(operator.id).await.expect("read");
    assert_eq!(stored.map(|u| u.role), Some(Role::Operator));
}
