// The cache policy: admit (hit, revalidate, coalesce), the response (store while relaying,
// refresh on 304, stale-if-error, invalidate) and the end of the exchange (release pins and
// fills).
#include "cache/internal/cache_policy.h"

#include <algorithm>
#include <charconv>

namespace ficus::cache {

using policy::Context;
using policy::Decision;

namespace {

thread_local std::string t_key;
thread_local std::string t_text;

bool HasConditionals(const http::RequestHead& r) {
  for (const http::Header& h : r.headers) {
    if (http::EqualsIgnoreCase(h.name, "If-None-Match") ||
        http::EqualsIgnoreCase(h.name, "If-Modified-Since") ||
        http::EqualsIgnoreCase(h.name, "If-Match") ||
        http::EqualsIgnoreCase(h.name, "If-Unmodified-Since") ||
        http::EqualsIgnoreCase(h.name, "If-Range")) {
      return true;
    }
  }
  return false;
}

std::string_view Number(int64_t n, char (&buf)[24]) {
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  return {buf, static_cast<size_t>(end - buf)};
}

// "ficus; fwd=<fwd>; fwd-status=<status>[; stored][; detail=<why>]"
void ForwardStatus(Context& ctx, std::string_view fwd, int status, bool stored,
                   std::string_view why) {
  char buf[24];
  t_text.assign("ficus; fwd=").append(fwd);
  if (status > 0) t_text.append("; fwd-status=").append(Number(status, buf));
  if (stored) t_text.append("; stored");
  if (!why.empty()) t_text.append("; detail=").append(why);
  ctx.AddResponseHeader("Cache-Status", t_text);
}

// Whether a 304 is about `stored`: its ETag, when it has one, names the stored one (RFC 9111
// §4.3.4: a strong validator must match; no validator: the only stored response).
bool Selects(const http::ResponseHead& r, const Object& stored) {
  auto etag = FindField(r.headers, "ETag");
  if (!etag || etag->starts_with("W/")) return true;
  return *etag == stored.validator;
}

const Decision kGatewayTimeout = Decision::Respond(
    {504,
     {},
     "application/json",
     R"({"error":"only_if_cached","message":"no stored response and only-if-cached"})"});

bool Unsafe(http::Method m) {
  return m == http::Method::kPost || m == http::Method::kPut || m == http::Method::kDelete ||
         m == http::Method::kPatch || m == http::Method::kOther;
}

}  // namespace

Settings Settings::From(const config::Cache& c) {
  Settings s;
  s.rules.default_ttl_s = c.ttl.count() / 1000;
  s.rules.force_ttl = c.force_ttl;
  s.key_rules.sort_query = c.query_sort;
  s.key_rules.ignore_query = c.query_ignore;
  s.stale_while_revalidate_s = c.stale_while_revalidate.count() / 1000;
  s.stale_if_error_s = c.stale_if_error.count() / 1000;
  s.max_object_bytes = c.max_object_size;
  return s;
}

CachePolicy::CachePolicy(std::string route, const config::Cache& config,
                         std::shared_ptr<Store> store)
    : route_(std::move(route)),
      config_(config),
      settings_(Settings::From(config)),
      store_(std::move(store)) {}

Decision CachePolicy::Admit(Context& ctx) {
  const http::RequestHead& req = ctx.request();
  Stats& stats = store_->stats();
  if (req.method != http::Method::kGet && req.method != http::Method::kHead) {
    Stats::Add(stats.bypassed);
    ctx.AddResponseHeader("Cache-Status", "ficus; fwd=method");
    if (Unsafe(req.method)) {
      AppendKey(req.host, req.path, req.query, settings_.key_rules, t_key);
      ctx.state() =
          reinterpret_cast<uint64_t>(new Fill(*this, t_key, Fill::Mode::kUnsafe)) | kFillTag;
    }
    return Decision::Pass();
  }
  const CacheControl req_cc = RequestDirectives(req.headers);
  AppendKey(req.host, req.path, req.query, settings_.key_rules, t_key);
  bool vary_miss = false;
  Object* o = store_->Lookup(t_key, req.headers, &vary_miss);
  std::string_view fwd = vary_miss ? "vary-miss" : "uri-miss";
  if (o != nullptr && o->transformed && req_cc.no_transform) {
    // RFC 9110 §7.7: the client wants the upstream's representation, not one ficus encoded.
    // Fetched for this client alone (the compress policy leaves it alone too), and not stored
    // (Build: it would take the encoded variant's place under the same Accept-Encoding).
    o->Unref();
    Stats::Add(stats.misses);
    Fill* f = new Fill(*this, t_key, Fill::Mode::kMiss);
    ctx.state() = reinterpret_cast<uint64_t>(f) | kFillTag;
    f->fwd = "request";
    f->request_cc = req_cc;
    f->request_time_ms = ctx.now_ms();
    return Decision::Pass();
  }
  if (o != nullptr) {
    const int64_t age = CurrentAge(o->timing, ctx.now_ms());
    const int64_t left = o->timing.lifetime_s - age;
    const bool validate = o->no_cache || req_cc.no_cache;
    bool usable = left > 0 && !validate;
    // A request's max-age bounds the age it accepts; max-age=0 (a reload) always asks the
    // origin, whole-second ages being truncated.
    if (usable && req_cc.max_age >= 0 && (age > req_cc.max_age || req_cc.max_age == 0)) {
      usable = false;
    }
    if (usable && req_cc.min_fresh >= 0 && left < req_cc.min_fresh) usable = false;
    // A client may accept staleness (max-stale) unless the response forbids it.
    const bool may_stale = !validate && !o->must_revalidate && req_cc.max_age < 0;
    if (!usable && left <= 0 && may_stale && req_cc.max_stale >= 0 && -left <= req_cc.max_stale) {
      usable = true;
    }
    char buf[24];
    if (usable) {
      Stats::Add(stats.hits);
      ctx.state() = reinterpret_cast<uint64_t>(o);
      t_text.assign("ficus; hit; ttl=").append(Number(left, buf));
      return Serve(ctx, *o, t_text);
    }
    // RFC 5861: within stale-while-revalidate, every request gets the stale response at once,
    // and one of them (the one that wins `revalidating`) refreshes it in the background.
    if (left <= 0 && may_stale && o->stale_while_revalidate_s > 0 &&
        -left <= o->stale_while_revalidate_s) {
      Stats::Add(stats.stale);
      t_text.assign("ficus; hit; fwd=stale; ttl=").append(Number(left, buf));
      const bool refresher = !o->revalidating.exchange(true, std::memory_order_acq_rel);
      if (!refresher || req.method != http::Method::kGet || HasConditionals(req)) {
        if (refresher) o->revalidating.store(false, std::memory_order_release);
        ctx.state() = reinterpret_cast<uint64_t>(o);
        return Serve(ctx, *o, t_text);
      }
      // The refresh's state: a revalidation of `o` whose answer only the cache sees.
      Fill* f = new Fill(*this, t_key, Fill::Mode::kRevalidate);
      ctx.state() = reinterpret_cast<uint64_t>(f) | kFillTag;
      f->fwd = "stale";
      f->request_cc = req_cc;
      f->request_time_ms = ctx.now_ms();
      f->stale = o;  // pinned until End, which comes after the refresh: the answer's storage
      f->refreshing = true;
      if (!o->validator.empty()) ctx.AddHeader("If-None-Match", o->validator);
      if (!o->last_modified.empty()) ctx.AddHeader("If-Modified-Since", o->last_modified);
      ctx.RefreshInBackground();
      return Serve(ctx, *o, t_text);
    }
    if (req_cc.only_if_cached) {
      o->Unref();
      return kGatewayTimeout;
    }
    fwd = left > 0 ? "request" : "stale";
  } else if (req_cc.only_if_cached) {
    return kGatewayTimeout;
  }
  Stats::Add(stats.misses);
  Fill* f = new Fill(*this, t_key, o ? Fill::Mode::kRevalidate : Fill::Mode::kMiss);
  ctx.state() = reinterpret_cast<uint64_t>(f) | kFillTag;
  f->fwd = fwd;
  f->request_cc = req_cc;
  f->request_time_ms = ctx.now_ms();
  f->stale = o;
  if (o != nullptr) {
    if (HasConditionals(req)) {
      f->mode = Fill::Mode::kMiss;  // the client validates its own copy: relay the answer
    } else {
      // The upstream's own validator, not the weak one of a variant ficus encoded.
      if (!o->validator.empty()) ctx.AddHeader("If-None-Match", o->validator);
      if (!o->last_modified.empty()) ctx.AddHeader("If-Modified-Since", o->last_modified);
    }
  }
  // Coalescing: one fill per key in flight; a request that says no-cache/no-store, a HEAD, or a
  // refresh does not wait for others.
  if (req.method == http::Method::kGet && !req_cc.no_store) {
    f->leader = store_->BeginFill(t_key);
    if (!f->leader && !req_cc.no_cache) return Decision::Wait();
  }
  return Decision::Pass();
}

net::Task<Decision> CachePolicy::Wait(Context& ctx) {
  Fill* f = FillOf(ctx.state());
  net::Wakeup wakeup(ctx.loop());
  if (store_->JoinFill(f->key, &wakeup)) {
    const int64_t timeout_ms = config_.coalesce_timeout.count();
    if (timeout_ms > 0) wakeup.SignalAt(ctx.loop().NowMs() + timeout_ms);
    co_await wakeup;
    if (wakeup.timed_out() && store_->LeaveFill(f->key, &wakeup)) {
      // The fill is still in flight (a slow origin): stop waiting and ask the upstream too.
      Stats::Add(store_->stats().coalesce_timeouts);
      f->fwd = "miss";
      co_return Decision::Pass();
    }
  }
  Object* o = store_->Lookup(f->key, ctx.request().headers, nullptr);
  if (o != nullptr) {
    const int64_t left = o->timing.lifetime_s - CurrentAge(o->timing, ctx.now_ms());
    // A no-transform waiter never takes a variant ficus encoded (Admit's rule).
    if (left > 0 && !o->no_cache && !(o->transformed && f->request_cc.no_transform)) {
      Stats::Add(store_->stats().coalesced);
      if (f->served) f->served->Unref();
      f->served = o;
      char buf[24];
      t_text.assign("ficus; hit; collapsed; ttl=").append(Number(left, buf));
      co_return Serve(ctx, *o, t_text);
    }
    o->Unref();
  }
  // The fill was not stored (uncacheable, too large, failed): go upstream, without waiting
  // again, with validators if we hold a stale copy.
  f->fwd = "miss";
  co_return Decision::Pass();
}

Object* CachePolicy::Build(Context& ctx, const Fill& f, const http::ResponseHead& r,
                           std::string_view* why) {
  const http::RequestHead& req = ctx.request();
  if (req.method != http::Method::kGet) {
    *why = "head";
    return nullptr;
  }
  const CacheControl cc = ResponseDirectives(r.headers);
  const Verdict v = Storable(req, f.request_cc, r.status, r.headers, cc, settings_.rules);
  if (v != Verdict::kStorable) {
    *why = VerdictName(v);
    return nullptr;
  }
  // A body another policy re-encodes (compression) has a length known only at its end.
  const bool transformed = ctx.response_transform() != nullptr;
  if (!transformed && r.framing == http::BodyFraming::kContentLength &&
      r.content_length > settings_.max_object_bytes) {
    *why = "too-large";
    return nullptr;
  }
  auto* o = new Object;
  o->status = r.status;
  o->key = f.key;
  o->transformed = transformed;
  // What the client gets: the upstream's fields less those a policy removed, plus those that
  // describe the representation it made (Content-Encoding, Vary, a weak ETag).
  if (ctx.dropped_response_fields().empty()) {
    AppendStoredFields(r.headers, o->headers, &cc);
  } else {
    std::vector<http::Header> kept;
    for (const http::Header& h : r.headers) {
      if (!ctx.Dropped(h.name)) kept.push_back(h);
    }
    AppendStoredFields(kept, o->headers, &cc);
  }
  o->headers.append(ctx.representation_fields());
  const int64_t now = ctx.now_ms();
  if (!FindField(r.headers, "Date")) {
    o->headers.append("Date: ").append(FormatHttpDate(now / 1000)).append("\r\n");
  }
  std::vector<http::Header> fields;
  ParseStoredFields(o->headers, fields);
  VaryNames(fields, o->vary_names);
  if (f.request_cc.no_transform && !transformed &&
      std::find(o->vary_names.begin(), o->vary_names.end(), "accept-encoding") !=
          o->vary_names.end()) {
    // A no-transform request got the identity body where other clients with its
    // Accept-Encoding get an encoded one: storing it would replace their variant.
    o->Unref();
    *why = "no-transform";
    return nullptr;
  }
  AppendSecondaryKey(o->vary_names, req.headers, o->secondary);
  Describe(*o, fields, settings_, f.request_time_ms, now, AgeValue(r.headers));
  if (auto etag = FindField(r.headers, "ETag")) o->validator = *etag;
  return o;
}

Object* CachePolicy::Refresh(const Object& stale, const http::ResponseHead& r,
                             int64_t request_time_ms, int64_t now_ms) {
  auto* o = new Object;
  o->status = stale.status;
  o->key = stale.key;
  o->body = stale.body;
  o->vary_names = stale.vary_names;
  o->secondary = stale.secondary;
  o->validator = stale.validator;
  o->transformed = stale.transformed;
  // §3.2: the 304's fields replace the stored ones of the same name, except framing and
  // hop-by-hop fields (AppendStoredFields) and, for a variant ficus encoded, the fields that
  // describe that representation (its own weak ETag, Content-Encoding, Vary): the 304's are the
  // upstream's, which name the identity body.
  const bool encoded = stale.transformed;
  auto kept = [encoded](const http::Header& h) {
    return !encoded || !(http::EqualsIgnoreCase(h.name, "ETag") ||
                         http::EqualsIgnoreCase(h.name, "Content-Encoding") ||
                         http::EqualsIgnoreCase(h.name, "Vary"));
  };
  std::vector<http::Header> merged;
  ParseStoredFields(stale.headers, merged);
  const bool dated = FindField(r.headers, "Date").has_value();
  std::erase_if(merged, [&](const http::Header& h) {
    if (!dated && http::EqualsIgnoreCase(h.name, "Date")) return true;  // the 304 is the new word
    return FindField(r.headers, h.name) && kept(h);
  });
  for (const http::Header& h : r.headers) {
    if (kept(h)) merged.push_back(h);
  }
  // The merged directives decide which fields a qualified no-cache / private leaves out.
  const CacheControl cc = ResponseDirectives(merged);
  AppendStoredFields(merged, o->headers, &cc);
  if (!dated) o->headers.append("Date: ").append(FormatHttpDate(now_ms / 1000)).append("\r\n");
  std::vector<http::Header> fields;
  ParseStoredFields(o->headers, fields);
  Describe(*o, fields, settings_, request_time_ms, now_ms, AgeValue(r.headers));
  return o;
}

void CachePolicy::Invalidate(Context& ctx, const Fill& f, const http::ResponseHead& r) {
  // §4.4: after a non-error response to an unsafe method, the target URI and same-origin
  // Location / Content-Location are no longer fresh.
  if (r.status < 200 || r.status >= 400) return;
  size_t n = store_->Invalidate(f.key);
  for (std::string_view name : {"Location", "Content-Location"}) {
    if (auto v = FindField(r.headers, name)) {
      if (LocationKey(ctx.request().host, *v, settings_.key_rules, t_key)) {
        n += store_->Invalidate(t_key);
      }
    }
  }
  store_->stats().invalidated.fetch_add(n, std::memory_order_relaxed);
}

Decision CachePolicy::OnResponse(Context& ctx, const http::ResponseHead& r) {
  Fill* f = FillOf(ctx.state());
  if (f == nullptr) return Decision::Pass();
  if (f->mode == Fill::Mode::kUnsafe) {
    Invalidate(ctx, *f, r);
    return Decision::Pass();
  }
  Stats& stats = store_->stats();
  const int64_t now = ctx.now_ms();
  // §4.3.4: a 304 freshens the stored response it selects (a strong ETag must match); one we
  // asked for answers with the refreshed response, one the client asked for is relayed.
  if (f->stale != nullptr && r.status == 304 && Selects(r, *f->stale)) {
    Object* o = Refresh(*f->stale, r, f->request_time_ms, now);
    Stats::Add(stats.revalidated);
    if (f->mode != Fill::Mode::kRevalidate) {
      store_->Insert(o);
      f->ReleaseWaiters();
      ForwardStatus(ctx, f->fwd, r.status, true, {});
      return Decision::Pass();
    }
    o->Ref();  // one for the store, one pinned here
    store_->Insert(o);
    f->served = o;
    f->ReleaseWaiters();
    // The cookies the 304 sets are this client's (never stored, never replayed to others).
    for (const http::Header& h : r.headers) {
      if (http::EqualsIgnoreCase(h.name, "Set-Cookie")) ctx.AddResponseHeader(h.name, h.value);
    }
    return Serve(ctx, *o, "ficus; fwd=stale; fwd-status=304; stored");
  }
  if (f->stale != nullptr && r.status >= 500) {
    if (MayServeOnError(*f->stale, now)) {
      // RFC 5861 stale-if-error: the stored response in place of the upstream's error.
      f->ReleaseWaiters();
      Stats::Add(stats.stale);
      Stats::Add(stats.stale_errors);
      char buf[24];
      t_text.assign("ficus; hit; fwd=stale; fwd-status=").append(Number(r.status, buf));
      return Serve(ctx, *f->stale, t_text);
    }
  }
  if (ctx.request().method == http::Method::kHead && f->stale != nullptr && r.status == 200) {
    // §4.3.5: the HEAD's fields freshen the stored GET response, or make it go.
    const bool updated = UpdateFromHead(*f, r, now);
    ForwardStatus(ctx, f->fwd, r.status, updated, updated ? "" : "head-mismatch");
    return Decision::Pass();
  }
  std::string_view why;
  Object* o = Build(ctx, *f, r, &why);
  if (o == nullptr) {
    Stats::Add(stats.bypassed);
    f->ReleaseWaiters();  // at once: the waiters go upstream themselves, concurrently
    ForwardStatus(ctx, f->fwd, r.status, false, why);
    return Decision::Pass();
  }
  f->building = o;
  f->body = std::make_shared<std::string>();
  o->body = f->body;
  if (ctx.response_transform() != nullptr) {
    // Encoded on the way: the stored body is what the relay sends, its length known at the end.
  } else if (r.framing == http::BodyFraming::kContentLength) {
    f->expected = r.content_length;
    f->body->reserve(r.content_length);
  } else if (r.framing == http::BodyFraming::kNone) {
    f->expected = 0;
  }
  ctx.TapResponseBody(f);
  ForwardStatus(ctx, f->fwd, r.status, true, {});
  return Decision::Pass();
}

bool CachePolicy::MayServeOnError(const Object& stale, int64_t now_ms) const {
  if (stale.must_revalidate || stale.no_cache || stale.stale_if_error_s <= 0) return false;
  const int64_t left = stale.timing.lifetime_s - CurrentAge(stale.timing, now_ms);
  return -left <= stale.stale_if_error_s;
}

Decision CachePolicy::OnError(Context& ctx, const Error& error) {
  // The upstream could not be reached or did not answer (connect failure, timeout, reset): the
  // same stale-if-error as for a 5xx it sent.
  Fill* f = FillOf(ctx.state());
  // A background refresh that failed: the client has its stale answer; the entry stays.
  if (f == nullptr || f->mode == Fill::Mode::kUnsafe || f->stale == nullptr ||
      ctx.refresh_in_background()) {
    return Decision::Pass();
  }
  if (!MayServeOnError(*f->stale, ctx.now_ms())) return Decision::Pass();
  f->ReleaseWaiters();
  Stats::Add(store_->stats().stale);
  Stats::Add(store_->stats().stale_errors);
  t_text.assign("ficus; hit; fwd=stale; detail=").append(ErrorKindName(error.kind));
  return Serve(ctx, *f->stale, t_text);
}

void CachePolicy::End(Context& ctx, const policy::Outcome& /*outcome*/) {
  uint64_t& state = ctx.state();
  if (state == 0) return;
  if (Fill* f = FillOf(state)) {
    delete f;
  } else {
    reinterpret_cast<Object*>(state)->Unref();
  }
  state = 0;
}

}  // namespace ficus::cache
