// The PostgreSQL wire protocol: frames, startup packets, the frontend messages the proxy reads;
// malformed and oversized input gets the right SQLSTATE, never a crash.
#include <gtest/gtest.h>

#include "pg/pg.h"

namespace ficus::pg {
namespace {

std::string Startup(const std::vector<std::pair<std::string, std::string>>& params,
                    uint32_t code = kProtocol3) {
  std::string body;
  AppendInt32(body, code);
  for (const auto& [k, v] : params) {
    body += k;
    body += '\0';
    body += v;
    body += '\0';
  }
  body += '\0';
  std::string out;
  AppendInt32(out, static_cast<uint32_t>(body.size() + 4));
  return out + body;
}

std::string Message(char type, std::string_view body) {
  std::string out;
  AppendMessage(out, type, body);
  return out;
}

TEST(PgProtocol, StartupPacket) {
  const std::string p = Startup({{"user", "app"}, {"database", "shop"}});
  Frame f = ScanStartupFrame(p.substr(0, 3));
  EXPECT_EQ(f.status, Frame::Status::kNeedMore);
  f = ScanStartupFrame(p.substr(0, 6));
  EXPECT_EQ(f.status, Frame::Status::kNeedMore);
  EXPECT_EQ(f.size, p.size());
  f = ScanStartupFrame(p);
  ASSERT_EQ(f.status, Frame::Status::kComplete);
  StartupPacket sp;
  ASSERT_FALSE(ParseStartupPacket(p, &sp));
  EXPECT_EQ(sp.kind, StartupPacket::Kind::kStartup);
  ASSERT_TRUE(sp.Get("database"));
  EXPECT_EQ(*sp.Get("database"), "shop");
}

TEST(PgProtocol, SslGssAndCancelRequests) {
  std::string ssl;
  AppendInt32(ssl, 8);
  AppendInt32(ssl, kSslRequestCode);
  StartupPacket sp;
  ASSERT_FALSE(ParseStartupPacket(ssl, &sp));
  EXPECT_EQ(sp.kind, StartupPacket::Kind::kSsl);
  std::string gss;
  AppendInt32(gss, 8);
  AppendInt32(gss, kGssEncRequestCode);
  ASSERT_FALSE(ParseStartupPacket(gss, &sp));
  EXPECT_EQ(sp.kind, StartupPacket::Kind::kGssEnc);
  std::string cancel;
  AppendInt32(cancel, 16);
  AppendInt32(cancel, kCancelRequestCode);
  AppendInt32(cancel, 1234);
  AppendInt32(cancel, 0xdeadbeef);
  ASSERT_FALSE(ParseStartupPacket(cancel, &sp));
  EXPECT_EQ(sp.kind, StartupPacket::Kind::kCancel);
  EXPECT_EQ(sp.cancel_pid, 1234u);
  EXPECT_EQ(sp.cancel_key, 0xdeadbeefu);
  cancel.resize(12);
  cancel[3] = 12;
  EXPECT_STREQ(ParseStartupPacket(cancel, &sp).sqlstate, "08P01");
}

TEST(PgProtocol, BadStartupPackets) {
  std::string tiny;
  AppendInt32(tiny, 4);
  EXPECT_EQ(ScanStartupFrame(tiny + "xxxx").status, Frame::Status::kError);
  std::string huge;
  AppendInt32(huge, 100000);
  Frame f = ScanStartupFrame(huge);
  EXPECT_EQ(f.status, Frame::Status::kError);
  EXPECT_STREQ(f.error.sqlstate, "08P01");
  StartupPacket sp;
  EXPECT_STREQ(ParseStartupPacket(Startup({{"user", "a"}}, 2 << 16), &sp).sqlstate, "0A000");
  EXPECT_STREQ(ParseStartupPacket(Startup({{"database", "a"}}), &sp).sqlstate, "28000");
  sp = {};
  EXPECT_STREQ(ParseStartupPacket(Startup({{"user", "a"}, {"user", "b"}}), &sp).sqlstate, "08P01");
  std::string p = Startup({{"user", "a"}});
  p.pop_back();  // no terminator
  p[3] = static_cast<char>(p.size());
  sp = {};
  EXPECT_STREQ(ParseStartupPacket(p, &sp).sqlstate, "08P01");
}

TEST(PgProtocol, TypedFramesAreBounded) {
  const std::string q = Message('Q', std::string("SELECT 1\0", 9));
  Frame f = ScanMessageFrame(q, 1024, true);
  ASSERT_EQ(f.status, Frame::Status::kComplete);
  EXPECT_EQ(f.type, 'Q');
  EXPECT_EQ(f.size, q.size());
  EXPECT_EQ(ScanMessageFrame(q.substr(0, 7), 1024, true).status, Frame::Status::kNeedMore);
  f = ScanMessageFrame(q, 8, true);
  EXPECT_EQ(f.status, Frame::Status::kError);
  EXPECT_STREQ(f.error.sqlstate, "54000");
  f = ScanMessageFrame("Z\0\0\0\x02", 1024, true);  // 'Z' is a backend type
  EXPECT_STREQ(f.error.sqlstate, "08P01");
  f = ScanMessageFrame(std::string("Q\0\0\0\x02", 5), 1024, true);  // length < 4
  EXPECT_STREQ(f.error.sqlstate, "08P01");
  f = ScanMessageFrame(std::string("Q\xff\xff\xff\xff", 5), 1u << 30, true);
  EXPECT_STREQ(f.error.sqlstate, "54000");
  EXPECT_EQ(ScanMessageFrame(std::string("Z\0\0\0\x05I", 6), 1024, false).status,
            Frame::Status::kComplete);
}

TEST(PgProtocol, FrontendMessages) {
  std::string parse("s1\0SELECT $1\0", 13);
  AppendInt16(parse, 1);
  AppendInt32(parse, 23);
  ParseMessage pm;
  ASSERT_FALSE(ParseParse(parse, &pm));
  EXPECT_EQ(pm.statement, "s1");
  EXPECT_EQ(pm.query, "SELECT $1");
  EXPECT_EQ(pm.param_types, 1);
  EXPECT_STREQ(ParseParse(parse.substr(0, parse.size() - 1), &pm).sqlstate, "08P01");
  EXPECT_STREQ(CheckFrontendMessage('P', parse + "x").sqlstate, "08P01");

  std::string bind("p\0s1\0", 5);
  AppendInt16(bind, 0);
  AppendInt16(bind, 2);
  AppendInt32(bind, 2);
  bind += "42";
  AppendInt32(bind, 0xffffffff);  // NULL
  AppendInt16(bind, 0);
  BindMessage bm;
  ASSERT_FALSE(ParseBind(bind, &bm));
  EXPECT_EQ(bm.portal, "p");
  EXPECT_EQ(bm.statement, "s1");
  EXPECT_EQ(bm.params, 2);
  std::string lying = bind;
  lying[9 + 3] = 100;  // the first parameter claims 100 bytes
  EXPECT_STREQ(ParseBind(lying, &bm).sqlstate, "08P01");

  TargetMessage tm;
  const std::string target("Ss1\0", 4);  // tm views into it
  ASSERT_FALSE(ParseTarget(target, &tm));
  EXPECT_EQ(tm.what, 'S');
  EXPECT_EQ(tm.name, "s1");
  EXPECT_STREQ(ParseTarget(std::string("Xs1\0", 4), &tm).sqlstate, "08P01");
  EXPECT_STREQ(CheckFrontendMessage('S', "x").sqlstate, "08P01");
  EXPECT_FALSE(CheckFrontendMessage('S', ""));
  EXPECT_STREQ(CheckFrontendMessage('Q', "SELECT 1").sqlstate, "08P01");  // no NUL
}

TEST(PgProtocol, ErrorResponse) {
  std::string out;
  AppendErrorResponse(out, "FATAL", "53300", "too many");
  Frame f = ScanMessageFrame(out, 1024, false);
  ASSERT_EQ(f.status, Frame::Status::kComplete);
  EXPECT_EQ(f.type, 'E');
  EXPECT_NE(out.find(std::string("C53300\0", 7)), std::string::npos);
  EXPECT_NE(out.find(std::string("Mtoo many\0", 10)), std::string::npos);
}

}  // namespace
}  // namespace ficus::pg
