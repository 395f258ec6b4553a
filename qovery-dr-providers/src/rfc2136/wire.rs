//! Talking DNS to one server with hickory: queries, SOA serials, signed updates.
//! Everything hickory-specific lives here; the switcher speaks in targets.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_client::ClientError;
use hickory_client::ClientErrorKind;
use hickory_client::client::{Client, ClientHandle};
use hickory_proto::ProtoErrorKind;
use hickory_proto::dnssec::tsig::TSigner;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordSet, RecordType};
use hickory_proto::runtime::TokioRuntimeProvider;
use hickory_proto::udp::UdpClientStream;
use hickory_proto::xfer::DnsResponse;
use qovery_dr_core::{DnsTarget, ErrorKind, ProviderError, ProviderResult};

pub(crate) const PROVIDER: &str = "rfc2136";

/// The address records a target may be made of.
pub(crate) const ADDRESS_TYPES: [RecordType; 3] = [RecordType::A, RecordType::AAAA, RecordType::CNAME];

/// A record set as served: its values (sorted), type and TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Served {
    pub(crate) record_type: RecordType,
    pub(crate) ttl: u32,
    pub(crate) rdata: Vec<RData>,
}

impl Served {
    /// The target as users write it: an address, or a hostname without the final dot;
    /// several values joined by commas, sorted.
    pub(crate) fn target(&self) -> DnsTarget {
        let mut values: Vec<String> = self.rdata.iter().map(render).collect();
        values.sort();
        DnsTarget::new(values.join(","))
    }
}

fn render(r: &RData) -> String {
    match r {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::CNAME(c) => c.0.to_ascii().trim_end_matches('.').to_owned(),
        other => other.to_string(),
    }
}

/// Parses a target into record data: addresses become A/AAAA (several allowed,
/// comma-separated), anything else a single CNAME.
pub(crate) fn parse_target(target: &DnsTarget) -> ProviderResult<(RecordType, Vec<RData>)> {
    let parts: Vec<&str> = target.as_str().split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    let invalid = |why: String| ProviderError::new(ErrorKind::InvalidInput, PROVIDER, "switch", why);
    if parts.is_empty() {
        return Err(invalid("the new target is empty".to_owned()));
    }
    let addresses: Vec<Option<IpAddr>> = parts.iter().map(|p| IpAddr::from_str(p).ok()).collect();
    if addresses.iter().all(Option::is_some) {
        let rdata: Vec<RData> = addresses
            .into_iter()
            .flatten()
            .map(|ip| match ip {
                IpAddr::V4(v4) => RData::A(A(v4)),
                IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
            })
            .collect();
        let record_type = rdata[0].record_type();
        if rdata.iter().any(|r| r.record_type() != record_type) {
            return Err(invalid(format!(
                "target {target} mixes IPv4 and IPv6; switch the A and AAAA records separately"
            )));
        }
        return Ok((record_type, rdata));
    }
    if parts.len() > 1 {
        return Err(invalid(format!(
            "target {target}: a CNAME has exactly one value, and addresses cannot be mixed with names"
        )));
    }
    let name = fqdn(parts[0], "switch")?;
    Ok((RecordType::CNAME, vec![RData::CNAME(CNAME(name))]))
}

/// Parses a DNS name and makes it fully qualified.
pub(crate) fn fqdn(name: &str, operation: &str) -> ProviderResult<Name> {
    let mut n = Name::from_ascii(name).map_err(|e| {
        ProviderError::new(ErrorKind::InvalidInput, PROVIDER, operation, format!("{name:?} is not a DNS name: {e}"))
    })?;
    n.set_fqdn(true);
    Ok(n)
}

/// A record set built from record data.
pub(crate) fn record_set(name: &Name, record_type: RecordType, ttl: u32, rdata: &[RData]) -> RecordSet {
    let mut set = RecordSet::with_ttl(name.clone(), record_type, ttl);
    for r in rdata {
        set.insert(Record::from_rdata(name.clone(), ttl, r.clone()), 0);
    }
    set
}

/// One server, reached over UDP, with an optional TSIG signer.
#[derive(Clone)]
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) timeout: Duration,
    pub(crate) signer: Option<TSigner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("timeout", &self.timeout)
            .field("tsig", &self.signer.as_ref().map(|s| s.signer_name().to_string()))
            .finish()
    }
}

impl Server {
    async fn client(&self, operation: &str) -> ProviderResult<Client> {
        let stream = UdpClientStream::builder(self.addr, TokioRuntimeProvider::new())
            .with_timeout(Some(self.timeout))
            .with_signer(self.signer.clone().map(|s| Arc::new(s) as Arc<dyn hickory_proto::op::MessageFinalizer>))
            .build();
        let (client, background) = Client::connect(stream).await.map_err(|e| self.error(operation, e, false))?;
        tokio::spawn(background);
        Ok(client)
    }

    /// The record set of the first address type present at `name`, if any.
    pub(crate) async fn address_records(&self, name: &Name, operation: &str) -> ProviderResult<Option<Served>> {
        let mut client = self.client(operation).await?;
        for record_type in ADDRESS_TYPES {
            let response = client.query(name.clone(), DNSClass::IN, record_type).await;
            let answers = self.answer(response, operation)?;
            let records: Vec<&Record> =
                answers.iter().filter(|r| r.record_type() == record_type && r.name() == name).collect();
            if let Some(first) = records.first() {
                return Ok(Some(Served {
                    record_type,
                    ttl: first.ttl(),
                    rdata: records.iter().map(|r| r.data().clone()).collect(),
                }));
            }
        }
        Ok(None)
    }

    /// The names in the zone's NS record set, as this server serves it.
    pub(crate) async fn nameserver_names(&self, zone: &Name, operation: &str) -> ProviderResult<Vec<Name>> {
        let mut client = self.client(operation).await?;
        let answers = self.answer(client.query(zone.clone(), DNSClass::IN, RecordType::NS).await, operation)?;
        Ok(answers.iter().filter_map(|r| r.data().as_ns().map(|ns| ns.0.clone())).collect())
    }

    /// The A and AAAA addresses this server serves for `name` (glue for in-zone names).
    pub(crate) async fn addresses(&self, name: &Name, operation: &str) -> ProviderResult<Vec<IpAddr>> {
        let mut client = self.client(operation).await?;
        let mut out = Vec::new();
        for record_type in [RecordType::A, RecordType::AAAA] {
            let answers = self.answer(client.query(name.clone(), DNSClass::IN, record_type).await, operation)?;
            out.extend(answers.iter().filter(|r| r.name() == name).filter_map(|r| match r.data() {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            }));
        }
        Ok(out)
    }

    /// The zone's SOA serial as this server serves it.
    pub(crate) async fn serial(&self, zone: &Name, operation: &str) -> ProviderResult<u32> {
        let mut client = self.client(operation).await?;
        let answers = self.answer(client.query(zone.clone(), DNSClass::IN, RecordType::SOA).await, operation)?;
        answers.iter().find_map(|r| r.data().as_soa().map(|soa| soa.serial())).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::InvalidConfig,
                PROVIDER,
                operation,
                format!("{} serves no SOA for zone {zone}: it is not authoritative for it", self.addr),
            )
        })
    }

    /// The TXT strings at `name` (each record's strings joined) and their TTL; `None`
    /// when there is no TXT record there.
    pub(crate) async fn txt_records(&self, name: &Name, operation: &str) -> ProviderResult<Option<(u32, Vec<RData>)>> {
        let mut client = self.client(operation).await?;
        let answers = self.answer(client.query(name.clone(), DNSClass::IN, RecordType::TXT).await, operation)?;
        let records: Vec<&Record> =
            answers.iter().filter(|r| r.record_type() == RecordType::TXT && r.name() == name).collect();
        Ok(records.first().map(|first| (first.ttl(), records.iter().map(|r| r.data().clone()).collect())))
    }

    /// Sends a create update (prerequisite: no record set of `new`'s type at its name).
    /// Returns the server's response code; transport failures are errors.
    pub(crate) async fn create(&self, new: RecordSet, zone: &Name, operation: &str) -> ProviderResult<ResponseCode> {
        let mut client = self.client(operation).await?;
        match client.create(new, zone.clone()).await {
            Ok(response) => Ok(response.response_code()),
            Err(e) => match no_records_code(&e) {
                Some(code) => Ok(code),
                None => Err(self.error(operation, e, true)),
            },
        }
    }

    /// Sends a compare-and-swap update (prerequisite: `current` exists exactly as given).
    /// Returns the server's response code; transport failures are errors.
    pub(crate) async fn compare_and_swap(
        &self,
        current: RecordSet,
        new: RecordSet,
        zone: &Name,
    ) -> ProviderResult<ResponseCode> {
        let mut client = self.client("switch").await?;
        match client.compare_and_swap(current, new, zone.clone()).await {
            Ok(response) => Ok(response.response_code()),
            Err(e) => match no_records_code(&e) {
                Some(code) => Ok(code),
                None => Err(self.error("switch", e, true)),
            },
        }
    }

    /// The answers of a response, empty for NXDOMAIN/NODATA; other codes are errors.
    fn answer(&self, response: Result<DnsResponse, ClientError>, operation: &str) -> ProviderResult<Vec<Record>> {
        match response {
            Ok(r) if matches!(r.response_code(), ResponseCode::NoError | ResponseCode::NXDomain) => {
                Ok(r.answers().to_vec())
            }
            Ok(r) => Err(rcode_error(r.response_code(), self.addr, operation)),
            Err(e) => match no_records_code(&e) {
                Some(ResponseCode::NoError | ResponseCode::NXDomain) => Ok(Vec::new()),
                Some(code) => Err(rcode_error(code, self.addr, operation)),
                None => Err(self.error(operation, e, false)),
            },
        }
    }

    /// A transport or protocol failure. For writes, a timeout means the update may have been applied.
    fn error(&self, operation: &str, e: impl Into<ClientError>, write: bool) -> ProviderError {
        let e: ClientError = e.into();
        let text = match e.kind() {
            ClientErrorKind::Proto(p) => p.to_string(),
            _ => e.to_string(),
        };
        let lower = text.to_ascii_lowercase();
        let timed_out = match e.kind() {
            ClientErrorKind::Timeout => true,
            ClientErrorKind::Proto(p) => p.is_busy() || matches!(p.kind(), ProtoErrorKind::Timeout),
            _ => false,
        };
        let (kind, hint) = if timed_out {
            if write {
                (
                    ErrorKind::Indeterminate,
                    "no answer: the update may have been applied; read the record before retrying",
                )
            } else {
                (ErrorKind::Timeout, "no answer in time; check the address and that the server is up")
            }
        } else if ["tsig", "hmac", "signature", "badsig", "badkey"].iter().any(|w| lower.contains(w)) {
            // A server that rejects our TSIG (BADSIG/BADKEY) answers with an empty MAC,
            // which hickory reports as an unverifiable response: the update was not applied.
            (
                ErrorKind::Unauthenticated,
                "the server rejected the TSIG signature: check the key name, algorithm and secret",
            )
        } else if write {
            (ErrorKind::Indeterminate, "the update may have been applied; read the record before retrying")
        } else {
            (ErrorKind::Transient, "retry; check the server's address if it persists")
        };
        ProviderError::new(kind, PROVIDER, operation, format!("{}: {text}: {hint}", self.addr)).with_source(e)
    }
}

/// The response code hickory folded into a "no records" error, if that is what `e` is.
fn no_records_code(e: &ClientError) -> Option<ResponseCode> {
    match e.kind() {
        ClientErrorKind::Proto(p) => match p.kind() {
            ProtoErrorKind::NoRecordsFound { response_code, .. } => Some(*response_code),
            _ => None,
        },
        _ => None,
    }
}

/// Maps a DNS response code to an error kind with what to do.
pub(crate) fn rcode_error(code: ResponseCode, server: SocketAddr, operation: &str) -> ProviderError {
    let (kind, hint) = match code {
        ResponseCode::NotAuth | ResponseCode::BADSIG | ResponseCode::BADKEY | ResponseCode::BADTIME => (
            ErrorKind::Unauthenticated,
            "the server rejected the request's authentication: check the TSIG key name, algorithm and secret, and the clocks",
        ),
        ResponseCode::Refused => {
            (ErrorKind::PermissionDenied, "the server refused: its ACL does not allow this key to update this zone")
        }
        ResponseCode::NotZone => {
            (ErrorKind::InvalidConfig, "the record is not in the zone the server is authoritative for")
        }
        ResponseCode::ServFail => (ErrorKind::Transient, "the server failed internally; retry"),
        ResponseCode::NotImp => (ErrorKind::NotSupported, "the server does not implement dynamic updates"),
        _ => (ErrorKind::InvalidInput, "the server rejected the request"),
    };
    ProviderError::new(kind, PROVIDER, operation, format!("{server} answered {code}: {hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_into_address_or_alias_records() {
        let (t, r) = parse_target(&DnsTarget::new("203.0.113.9, 203.0.113.10")).unwrap();
        assert_eq!((t, r.len()), (RecordType::A, 2));
        let (t, _) = parse_target(&DnsTarget::new("2001:db8::1")).unwrap();
        assert_eq!(t, RecordType::AAAA);
        let (t, r) = parse_target(&DnsTarget::new("lb.eu-west-3.example.com")).unwrap();
        assert_eq!(t, RecordType::CNAME);
        let served = Served { record_type: t, ttl: 60, rdata: r };
        assert_eq!(served.target().as_str(), "lb.eu-west-3.example.com", "rendered without the final dot");
        for bad in ["", "203.0.113.9,2001:db8::1", "a.example.com,b.example.com", "10.0.0.1,b.example.com"] {
            let err = parse_target(&DnsTarget::new(bad)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn response_codes_map_to_kinds() {
        let at: SocketAddr = "127.0.0.1:53".parse().unwrap();
        assert_eq!(rcode_error(ResponseCode::NotAuth, at, "x").kind(), ErrorKind::Unauthenticated);
        assert_eq!(rcode_error(ResponseCode::Refused, at, "x").kind(), ErrorKind::PermissionDenied);
        assert_eq!(rcode_error(ResponseCode::NotZone, at, "x").kind(), ErrorKind::InvalidConfig);
        assert_eq!(rcode_error(ResponseCode::ServFail, at, "x").kind(), ErrorKind::Transient);
    }
}
