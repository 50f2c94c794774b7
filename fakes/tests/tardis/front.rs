//! The network front (`fakes::front`) before the mock Tardis: answers pass through unchanged, and planned
//! ones have their transport spoiled the way wiremock cannot, a reset or a close in the middle of a body whose
//! `Content-Length` promised more, a late first byte, a drip.

use std::error::Error as _;
use std::time::Duration;

use fakes::front::{Front, NetworkFault};

use crate::support::{KEY, World, day, file_path, gunzip};

fn btc() -> String {
    file_path("binance-futures", "trades", day(), "BTCUSDT")
}

async fn front(world: &World) -> Front {
    Front::start(&world.mock.uri()).await.expect("the front starts")
}

/// `GET {front}{path}` with the key: the status, the `Content-Length` promised, and the body or the error that
/// ended it.
async fn fetch(client: &reqwest::Client, front: &Front) -> (u16, Option<u64>, Result<Vec<u8>, String>) {
    let response = client
        .get(format!("{}{}", front.uri(), btc()))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("the head of the answer arrives");
    let (status, length) = (response.status().as_u16(), response.content_length());
    let body = response.bytes().await.map(|b| b.to_vec()).map_err(|e| {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        text
    });
    (status, length, body)
}

#[tokio::test]
async fn answers_pass_through_unchanged_and_are_logged() {
    let world = World::start().await;
    let front = front(&world).await;
    let direct = world.get_keyed(&btc()).await;
    let (status, length, body) = fetch(&world.http, &front).await;
    assert_eq!((status, length), (200, Some(direct.body.len() as u64)));
    assert_eq!(body.expect("complete"), direct.body);
    let log = front.requests();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].path.as_str(), log[0].status, log[0].fault.as_deref()), (btc().as_str(), Some(200), None));
}

#[tokio::test]
async fn a_reset_mid_body_breaks_the_transfer_and_the_next_request_gets_the_whole_file() {
    let world = World::start().await;
    let front = front(&world).await;
    front.fail_next("/v1/binance-futures/trades/", 1, NetworkFault::ResetMidBody);
    let (status, length, body) = fetch(&world.http, &front).await;
    assert_eq!(status, 200, "the head arrives whole");
    assert!(length.is_some_and(|n| n > 0));
    let error = body.expect_err("the body is cut short");
    assert!(error.to_lowercase().contains("connection reset"), "a TCP reset, not an orderly close: {error}");
    let (_, _, body) = fetch(&world.http, &front).await;
    let text = gunzip(&body.expect("the retry is complete")).expect("a complete gzip file");
    assert!(text.starts_with("exchange,symbol,timestamp,local_timestamp,id,side,price,amount"), "{text}");
    let faults: Vec<Option<String>> = front.requests().into_iter().map(|r| r.fault).collect();
    assert_eq!(faults, [Some("reset mid-body".to_owned()), None]);
}

#[tokio::test]
async fn a_close_mid_body_leaves_the_body_short_of_its_length() {
    let world = World::start().await;
    let front = front(&world).await;
    front.fail_next("/v1/", 1, NetworkFault::CloseMidBody);
    let (status, length, body) = fetch(&world.http, &front).await;
    assert_eq!(status, 200);
    assert!(length.is_some_and(|n| n > 0));
    let error = body.expect_err("an incomplete body is an error, not a shorter file");
    assert!(!error.to_lowercase().contains("connection reset"), "an orderly close, not a reset: {error}");
}

#[tokio::test]
async fn a_dripped_body_arrives_whole_in_many_pieces() {
    let world = World::start().await;
    let front = front(&world).await;
    let direct = world.get_keyed(&btc()).await;
    // About a fifth of the file per tenth of a second: whole in about half a second, in several pieces.
    let rate = (direct.body.len() as u64 * 2).max(10);
    front.fail_next("/v1/", 1, NetworkFault::Drip { bytes_per_second: rate });
    let mut response = world.http.get(format!("{}{}", front.uri(), btc())).bearer_auth(KEY).send().await.expect("head");
    let (mut body, mut pieces) = (Vec::new(), 0);
    while let Some(chunk) = response.chunk().await.expect("no transport error") {
        body.extend_from_slice(&chunk);
        pieces += 1;
    }
    assert_eq!(body, direct.body);
    assert!(pieces >= 3, "{pieces} pieces");
}

#[tokio::test]
async fn a_late_first_byte_outlasts_a_short_client_timeout() {
    let world = World::start().await;
    let front = front(&world).await;
    front.fail_next("/v1/", 1, NetworkFault::SlowFirstByte(Duration::from_secs(5)));
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().expect("client");
    let late = impatient.get(format!("{}{}", front.uri(), btc())).bearer_auth(KEY).send().await;
    assert!(late.expect_err("no byte in time").is_timeout());
    let (status, _, body) = fetch(&world.http, &front).await;
    assert_eq!(status, 200);
    assert!(body.is_ok(), "the plan was used once");
}
