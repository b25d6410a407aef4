//! `gokart simulate`: plays an MMP against a running gokart. It clicks a partner tracking link
//! (without following the redirect), reads the minted `gk_click_id` from the `Location`, and
//! sends each event as an Adjust- or AppsFlyer-shaped postback, printing every answer.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::{anyhow, bail, Context};
use gokart_domain::macros::append_query_param;
use gokart_mmp::{Mmp, SimulatedConversion};
use url::Url;
use uuid::Uuid;

#[derive(Debug, Clone, clap::Args)]
pub struct Simulate {
    /// The partner tracking link, e.g. http://api.brownboots.localhost:8080/api/v1/offer-link/redirect/<offerId>?pub_member_id=u1
    #[arg(long)]
    pub link: String,
    /// adjust or appsflyer.
    #[arg(long)]
    pub mmp: Mmp,
    /// Event ids to send, in order, comma-separated.
    #[arg(long, default_value = "Install", value_delimiter = ',')]
    pub events: Vec<String>,
    /// Revenue the MMP reports for in-app events (not for the install).
    #[arg(long)]
    pub amount: Option<String>,
    #[arg(long, default_value = "USD")]
    pub currency: String,
    /// Flag every postback as rejected by the MMP's fraud tools, with this reason.
    #[arg(long)]
    pub rejected_reason: Option<String>,
    /// The tenant's secure postback URL with its signature.
    #[arg(long)]
    pub postback_url: String,
}

pub async fn run(args: Simulate) -> anyhow::Result<()> {
    let link = Url::parse(&args.link).context("--link is not a URL")?;
    let postback = Url::parse(&args.postback_url).context("--postback-url is not a URL")?;
    let client = client_for(&[&link, &postback])?;

    let mut link = link;
    if !link.query_pairs().any(|(key, _)| key == "pub_member_id" || key == "pub_click_id") {
        link.query_pairs_mut().append_pair("pub_click_id", &format!("sim-{}", Uuid::new_v4()));
    }
    let response = client.get(link.as_str()).send().await.context("clicking the link")?;
    let status = response.status();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let Some(location) = location.filter(|_| status.is_redirection()) else {
        let text = response.text().await.unwrap_or_default();
        bail!("the link answered {status} without a redirect: {}", text.trim());
    };
    let click_id = click_id_in(&location, args.mmp)?;
    println!("click  {status} → {location}");
    println!("gk_click_id {click_id}");

    for event_id in args.events.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        let input = SimulatedConversion {
            click_id,
            event_id: event_id.to_owned(),
            is_install: event_id == "Install",
            amount: args.amount.clone(),
            currency: args.amount.as_ref().map(|_| args.currency.clone()),
            conversion_id: Uuid::new_v4().simple().to_string(),
            rejected_reason: args.rejected_reason.clone(),
        };
        let url = gokart_mmp::postback_params(args.mmp, &input)
            .iter()
            .fold(args.postback_url.clone(), |url, (key, value)| {
                append_query_param(&url, key, value)
            });
        let response =
            client.get(&url).send().await.with_context(|| format!("sending {event_id}"))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let data = serde_json::from_str::<serde_json::Value>(&body)
            .map(|value| value["data"].to_string())
            .unwrap_or(body);
        println!("{event_id:<16} {status} {data}");
    }
    Ok(())
}

/// The click id the redirect carries: the MMP's own parameter, else `gk_click_id`, else any
/// UUID value in the link (for a `{gk_click_id}` placed under another name).
fn click_id_in(location: &str, mmp: Mmp) -> anyhow::Result<Uuid> {
    let url =
        Url::parse(location).with_context(|| format!("the redirect {location:?} is not a URL"))?;
    let preferred = mmp.tracking_system().click_id_parameter().unwrap_or("gk_click_id");
    let pairs: Vec<(String, String)> =
        url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    [preferred, "gk_click_id"]
        .iter()
        .find_map(|name| pairs.iter().find(|(key, _)| key == name))
        .into_iter()
        .chain(pairs.iter())
        .find_map(|(_, value)| Uuid::try_parse(value).ok())
        .ok_or_else(|| anyhow!("no click id in the redirect {location}"))
}

/// A client that does not follow redirects and reaches `*.localhost` hosts on 127.0.0.1, so a
/// link like `http://api.brownboots.localhost:8080/...` works without DNS set up.
fn client_for(urls: &[&Url]) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30));
    for url in urls {
        if let Some(host) = url.host_str().filter(|host| host.ends_with(".localhost")) {
            let port = url.port_or_known_default().unwrap_or(80);
            builder = builder.resolve(host, SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        }
    }
    Ok(builder.build()?)
}
