// TLS keys: a listener's certificate and key (`postgres.tls`, `admin.tls`) and a database's
// sslmode and files. Each file is opened and parsed here (OpenSSL's PEM readers), so a missing,
// unreadable or wrong file is a config error at its key, at startup and on reload (a reload that
// fails keeps the running config and its certificates).
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "config/internal/reader.h"

namespace ficus::config {

const char* PgSslModeName(PgSslMode m) {
  switch (m) {
    case PgSslMode::kDisable:
      return "disable";
    case PgSslMode::kAllow:
      return "allow";
    case PgSslMode::kPrefer:
      return "prefer";
    case PgSslMode::kRequire:
      return "require";
    case PgSslMode::kVerifyCa:
      return "verify-ca";
    case PgSslMode::kVerifyFull:
      return "verify-full";
  }
  return "prefer";
}

namespace internal {
namespace {

// Why `path` cannot be read (errno's text), or empty.
std::string Unreadable(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::strerror(errno);
  return "";
}

// The PEM certificates in `path` (0 when none parse), and the first one (caller frees).
int ReadCertificates(const std::string& path, X509** first) {
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (bio == nullptr) return 0;
  int n = 0;
  while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    if (n++ == 0 && first != nullptr) {
      *first = x;
    } else {
      X509_free(x);
    }
  }
  BIO_free(bio);
  ERR_clear_error();
  return n;
}

EVP_PKEY* ReadKey(const std::string& path) {
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (bio == nullptr) return nullptr;
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ERR_clear_error();
  return k;
}

}  // namespace

void Loader::CheckCaFile(const Value& v, const std::string& path) {
  if (std::string why = Unreadable(path); !why.empty()) {
    Error(v, "cannot read " + Quote(path) + ": " + why);
  } else if (ReadCertificates(path, nullptr) == 0) {
    Error(v, Quote(path) + " holds no PEM certificate");
  }
}

void Loader::CheckCertificateAndKey(const Value& cert_v, const Value& key_v,
                                    const TlsCertificate& t) {
  X509* cert = nullptr;
  if (std::string why = Unreadable(t.cert); !why.empty()) {
    Error(cert_v, "cannot read " + Quote(t.cert) + ": " + why);
  } else if (ReadCertificates(t.cert, &cert) == 0) {
    Error(cert_v, Quote(t.cert) + " holds no PEM certificate");
  }
  EVP_PKEY* key = nullptr;
  if (std::string why = Unreadable(t.key); !why.empty()) {
    Error(key_v, "cannot read " + Quote(t.key) + ": " + why);
  } else if ((key = ReadKey(t.key)) == nullptr) {
    Error(key_v, Quote(t.key) + " holds no PEM private key (or it is encrypted)");
  }
  if (cert != nullptr && key != nullptr && X509_check_private_key(cert, key) != 1) {
    ERR_clear_error();
    Error(key_v, Quote(t.key) + " is not the key of the certificate in " + Quote(t.cert));
  }
  X509_free(cert);
  EVP_PKEY_free(key);
}

void Loader::ReadTlsCertificate(const Value& v, TlsCertificate* out, bool* required) {
  Fields f;
  std::vector<std::string> keys = {"cert", "key"};
  if (required != nullptr) keys.push_back("required");
  if (!ReadMap(v, keys, &f)) return;
  Require(f, v, "cert");
  Require(f, v, "key");
  const Value* c = f.Get("cert");
  const Value* k = f.Get("key");
  TlsCertificate t;
  if (c) {
    if (auto s = String(*c)) t.cert = *s;
  }
  if (k) {
    if (auto s = String(*k)) t.key = *s;
  }
  if (const Value* r = f.Get("required"); r && required != nullptr) {
    if (auto b = Bool(*r)) *required = *b;
  }
  if (!c || !k || t.cert.empty() || t.key.empty()) {
    if (c && t.cert.empty()) Error(*c, "must name a PEM certificate file");
    if (k && t.key.empty()) Error(*k, "must name a PEM private key file");
    return;
  }
  CheckCertificateAndKey(*c, *k, t);
  *out = std::move(t);
}

void Loader::ReadPgServerTls(const Fields& f, PgDatabase* d) {
  if (const Value* x = f.Get("sslmode")) {
    if (auto s = String(*x)) {
      bool known = false;
      for (PgSslMode m : {PgSslMode::kDisable, PgSslMode::kAllow, PgSslMode::kPrefer,
                          PgSslMode::kRequire, PgSslMode::kVerifyCa, PgSslMode::kVerifyFull}) {
        if (*s == PgSslModeName(m)) {
          d->sslmode = m;
          known = true;
        }
      }
      if (!known)
        Error(*x, "unknown sslmode " + Quote(*s) +
                      "; expected disable, allow, prefer, require, verify-ca or verify-full");
    }
  }
  const Value* root = f.Get("sslrootcert");
  if (root) {
    if (auto s = String(*root)) {
      d->sslrootcert = *s;
      if (d->sslmode < PgSslMode::kVerifyCa) {
        Error(*root, "is used only with sslmode verify-ca or verify-full (sslmode is " +
                         std::string(PgSslModeName(d->sslmode)) + ")");
      } else {
        CheckCaFile(*root, *s);
      }
    }
  }
  const Value* cert = f.Get("sslcert");
  const Value* key = f.Get("sslkey");
  if (cert) {
    if (auto s = String(*cert)) d->sslcert = *s;
  }
  if (key) {
    if (auto s = String(*key)) d->sslkey = *s;
  }
  if ((cert != nullptr) != (key != nullptr)) {
    Error(cert ? *cert : *key, "sslcert and sslkey go together: set both or neither");
  } else if (cert && key) {
    if (d->sslmode == PgSslMode::kDisable) {
      Error(*cert, "has no effect with sslmode disable");
    } else {
      CheckCertificateAndKey(*cert, *key, TlsCertificate{d->sslcert, d->sslkey});
    }
  }
}

void EmitTlsCertificate(YAML::Emitter& out, const TlsCertificate& t, const bool* required) {
  if (!t.enabled()) return;
  out << YAML::Key << "tls" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "cert" << YAML::Value << YAML::DoubleQuoted << t.cert;
  out << YAML::Key << "key" << YAML::Value << YAML::DoubleQuoted << t.key;
  if (required != nullptr) out << YAML::Key << "required" << YAML::Value << *required;
  out << YAML::EndMap;
}

}  // namespace internal
}  // namespace ficus::config
