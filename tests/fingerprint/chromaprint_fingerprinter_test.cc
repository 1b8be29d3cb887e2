// ChromaprintStream, FingerprintPcm, EncodeFingerprint / DecodeFingerprint on synthetic audio.
#include "fingerprint/chromaprint_fingerprinter.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/fingerprint_types.h"
#include "fingerprint/fingerprinter.h"
#include "gtest/gtest.h"
#include "tests/testing/audio_synth.h"

namespace trainspotter {
namespace {

using ::trainspotter::testing::SynthesizeMusic;

constexpr int kRate = kFingerprintSampleRate;

TEST(FingerprintPcmTest, DeterministicAndSeedDependent) {
  const std::vector<int16_t> a = SynthesizeMusic(20, kRate, 1, 1);
  const std::vector<int16_t> b = SynthesizeMusic(20, kRate, 1, 2);
  auto fa1 = FingerprintPcm(a, kRate, 1);
  auto fa2 = FingerprintPcm(a, kRate, 1);
  auto fb = FingerprintPcm(b, kRate, 1);
  ASSERT_TRUE(fa1.ok()) << fa1.status();
  ASSERT_TRUE(fa2.ok()) << fa2.status();
  ASSERT_TRUE(fb.ok()) << fb.status();
  EXPECT_EQ(*fa1, *fa2);
  EXPECT_NE(*fa1, *fb);
  // ~8 items per second, minus Chromaprint's start-up delay.
  EXPECT_GT(fa1->size(), 20 * kItemsPerSecond - 30);
  EXPECT_LT(fa1->size(), 20 * kItemsPerSecond + 1);
}

TEST(FingerprintPcmTest, SynthesisIsDeterministic) {
  EXPECT_EQ(SynthesizeMusic(3, 44100, 2, 7), SynthesizeMusic(3, 44100, 2, 7));
  EXPECT_NE(SynthesizeMusic(3, 44100, 2, 7), SynthesizeMusic(3, 44100, 2, 8));
}

TEST(FingerprintPcmTest, StereoAndOtherRatesWork) {
  const std::vector<int16_t> stereo = SynthesizeMusic(15, 44100, 2, 3);
  auto items = FingerprintPcm(stereo, 44100, 2);
  ASSERT_TRUE(items.ok()) << items.status();
  EXPECT_GT(items->size(), 80u);
}

TEST(ChromaprintStreamTest, ItemsDoNotDependOnHowTheAudioIsSplit) {
  const std::vector<int16_t> pcm = SynthesizeMusic(15, kRate, 1, 4);
  auto whole = FingerprintPcm(pcm, kRate, 1);
  ASSERT_TRUE(whole.ok());
  auto stream = ChromaprintStream::Create(kRate, 1);
  ASSERT_TRUE(stream.ok()) << stream.status();
  size_t pos = 0;
  size_t step = 1;
  while (pos < pcm.size()) {
    const size_t n = std::min(step, pcm.size() - pos);
    ASSERT_TRUE((*stream)->Feed(absl::MakeConstSpan(pcm.data() + pos, n)).ok());
    pos += n;
    step = step * 3 + 7;  // 1, 10, 37, ... irregular slices
    if (step > 50000) step = 13;
  }
  auto split = (*stream)->Finish();
  ASSERT_TRUE(split.ok());
  EXPECT_EQ(*whole, *split);
}

TEST(ChromaprintStreamTest, RejectsBadParametersAndMisuse) {
  EXPECT_EQ(ChromaprintStream::Create(0, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ChromaprintStream::Create(1000, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ChromaprintStream::Create(kRate, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ChromaprintStream::Create(kRate, 9).status().code(),
            absl::StatusCode::kInvalidArgument);

  auto stereo = ChromaprintStream::Create(kRate, 2);
  ASSERT_TRUE(stereo.ok());
  std::vector<int16_t> odd(3, 0);
  EXPECT_EQ((*stereo)->Feed(odd).code(), absl::StatusCode::kInvalidArgument);

  auto mono = ChromaprintStream::Create(kRate, 1);
  ASSERT_TRUE(mono.ok());
  ASSERT_TRUE((*mono)->Finish().ok());
  EXPECT_EQ((*mono)->Finish().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*mono)->Feed(odd).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(FingerprintPcmTest, SilenceAndDitherGiveTheSilenceItem) {
  // matcher/decision.cc leaves kSilenceItem out of the evidence; it must be what Chromaprint
  // really gives audio without energy: digital silence, and dither of +-1 LSB.
  const std::vector<int16_t> silence(static_cast<size_t>(10 * kRate), 0);
  std::vector<int16_t> dither(silence.size());
  uint32_t state = 12345;
  for (int16_t& s : dither) {
    state = state * 1664525u + 1013904223u;
    s = static_cast<int16_t>(static_cast<int>(state >> 30) - 1);  // -1, 0, 1 or 2
  }
  for (const std::vector<int16_t>* pcm :
       {&silence, static_cast<const std::vector<int16_t>*>(&dither)}) {
    auto items = FingerprintPcm(*pcm, kRate, 1);
    ASSERT_TRUE(items.ok()) << items.status();
    ASSERT_GT(items->size(), 50u);
    for (uint32_t item : *items) EXPECT_EQ(item, kSilenceItem);
  }
  // Music is not silence.
  auto music = FingerprintPcm(SynthesizeMusic(10, kRate, 1, 5), kRate, 1);
  ASSERT_TRUE(music.ok()) << music.status();
  EXPECT_EQ(std::count(music->begin(), music->end(), kSilenceItem), 0);
}

TEST(FingerprintPcmTest, VeryShortAudioGivesNoItems) {
  const std::vector<int16_t> pcm = SynthesizeMusic(0.5, kRate, 1, 5);
  auto items = FingerprintPcm(pcm, kRate, 1);
  ASSERT_TRUE(items.ok()) << items.status();
  EXPECT_TRUE(items->empty());
}

TEST(EncodeFingerprintTest, RoundTrip) {
  const std::vector<int16_t> pcm = SynthesizeMusic(30, kRate, 1, 6);
  auto items = FingerprintPcm(pcm, kRate, 1);
  ASSERT_TRUE(items.ok());
  auto encoded = EncodeFingerprint(*items);
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_EQ(encoded->substr(0, 2), "AQ");  // the first byte is the algorithm, 1
  auto decoded = DecodeFingerprint(*encoded);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->items, *items);
  EXPECT_EQ(decoded->algorithm, kChromaprintAlgorithm);
}

TEST(EncodeFingerprintTest, RoundTripsArbitraryItemsAndEmpty) {
  std::vector<uint32_t> items = {0, 1, 0xffffffffu, 0x80000000u, 12345678, 12345679, 0};
  auto encoded = EncodeFingerprint(items);
  ASSERT_TRUE(encoded.ok());
  auto decoded = DecodeFingerprint(*encoded);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->items, items);

  auto empty = EncodeFingerprint({});
  ASSERT_TRUE(empty.ok());
  auto decoded_empty = DecodeFingerprint(*empty);
  ASSERT_TRUE(decoded_empty.ok()) << decoded_empty.status();
  EXPECT_TRUE(decoded_empty->items.empty());
}

TEST(EncodeFingerprintTest, DecodesWhatFpcalcPrints) {
  // fpcalc 1.5.1 on a 9 s Ogg track of the real-music fixture (track12.ogg).
  const std::string fpcalc =
      "AQAAM1siJdEkRjgKHx7R9_iRvzg0ZdKR__DxZzhoHt5x4sfjWGiehAnyQT_CHH2OB8-D-FagIxYrPKEu_DhqHU5QPS"
      "rOI08UPD8eJegzNB32PLgSJS9KyhD3MLhwd7hyyKEGO_AADJWRAAiSCDDaGQQJCCIQg6QAVAFowGDAUSyJEYgIKogC"
      "RkCDAA";
  auto decoded = DecodeFingerprint(fpcalc);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->algorithm, 1);
  EXPECT_GT(decoded->items.size(), 40u);
  auto again = EncodeFingerprint(decoded->items, decoded->algorithm);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, fpcalc);
}

TEST(DecodeFingerprintTest, RejectsMalformedInput) {
  for (const std::string bad : {"", "A", "AQAD!!!!", "AQAD tEm", "AQAD+/==", "AQADtEmU\n",
                                "AAAAAAAA", "AQAAM1siJdEkRjgKHx7R", "_____________"}) {
    auto decoded = DecodeFingerprint(bad);
    EXPECT_FALSE(decoded.ok()) << "accepted '" << bad << "'";
    if (!decoded.ok()) {
      EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    }
  }
}

TEST(EncodeFingerprintTest, RejectsUnknownAlgorithm) {
  EXPECT_EQ(EncodeFingerprint({1, 2, 3}, 99).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace trainspotter
