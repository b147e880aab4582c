/*
 * The golden wire corpus (tests/wire_corpus/, format in its README) through Wire.parse: prints "name TAB verdict" per
 * case and exits 1 when a verdict differs from the expected one. Run by tests/test_wire_corpus.py.
 */
package iotbench

import java.nio.{ByteBuffer, ByteOrder}
import java.nio.charset.StandardCharsets
import java.nio.file.{Files, Paths}
import java.security.MessageDigest
import java.util.zip.GZIPInputStream

object WireCorpus {
  /** First 16 hex digits of the SHA-256 of the pixels as float32 little-endian in HWC order, -0.0 read as 0.0. */
  def checksum(chw: Array[Float]): String = {
    val bytes = ByteBuffer.allocate(Wire.Pixels * 4).order(ByteOrder.LITTLE_ENDIAN)
    for (p <- 0 until Wire.Plane; c <- 0 until 3) bytes.putFloat(chw(c * Wire.Plane + p) + 0.0f)
    MessageDigest.getInstance("SHA-256").digest(bytes.array()).take(8).map(b => f"${b & 0xff}%02x").mkString
  }

  def verdict(line: String): String = {
    val out = new Array[Float](Wire.Pixels)
    Wire.parse(line, out, 0) match {
      case Wire.Image(label, seq, _, raw) => s"ok:$label:${if (raw) "d" else "f"}:$seq:${checksum(out)}"
      case Wire.Rejected(reason, seq) => s"reject:$seq:$reason"
      case Wire.Trailer(n) => s"end:$n"
      case Wire.EndOfStream => "end-of-stream"
    }
  }

  def main(args: Array[String]): Unit = {
    if (args.length != 1) { System.err.println("usage: WireCorpus CORPUS.tsv.gz"); sys.exit(2) }
    val in = new GZIPInputStream(Files.newInputStream(Paths.get(args(0))))
    val text = try new String(in.readAllBytes(), StandardCharsets.US_ASCII) finally in.close() // as LineReceiver reads
    val rows = text.split("\n", -1).dropRight(1)
    var disagree = 0
    for (row <- rows) {
      val Array(name, expected, line) = row.split("\t", 3)
      val got = verdict(line)
      println(s"$name\t$got")
      if (got != expected) disagree += 1
    }
    if (disagree == 0) System.err.println(s"${rows.length} cases agree")
    else System.err.println(s"$disagree of ${rows.length} cases disagree")
    sys.exit(if (disagree == 0) 0 else 1)
  }
}
