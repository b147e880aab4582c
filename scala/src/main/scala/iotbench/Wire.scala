/*
 * Stream formats shared with the Python side (iotbench/wire.py), parsed and written by the JVM programs.
 *
 * One text line per image (an empty line ends the stream):
 *   v1      "<label digit><v1> <v2> ... <v3072>"     label glued to the first value, values %d 0-255 (or %f in [0,1])
 *   comma   "<label digit>,<v1>,...,<v3072>"         what iotbench's --format scala writes
 *   bigdl08 "<label+1>.0,0,0,0,32,0,0,0,32,<b>,<g>,<r>,..."  byte for byte what the original Scala sender wrote:
 *           BigDL 0.8's ByteRecord (1-based float label, 8-byte size header, BGR pixels as signed bytes)
 *   v2      "~<seq>:<send ns since epoch>:<v1, comma or bigdl08 line>", and "~end:<images sent>" before the end
 * Values are pixels of a 32x32x3 image, row-major HWC, RGB (BGR for bigdl08).
 *
 * A parser never throws on bad input: it returns a Rejected with one of the reason strings of wire.py.
 */
package iotbench

object Wire {
  val Side = 32
  val Plane: Int = Side * Side
  val Pixels: Int = Plane * 3
  val MaxLine: Int = 64 * 1024

  // Reasons, the same strings as iotbench/wire.py (keys in reports).
  val Empty = "empty payload"
  val WrongLength = "wrong number of values"
  val NotNumeric = "non-numeric characters"
  val BadLabel = "bad label"
  val BadHeader = "bad v2 header"
  val TooLong = "line too long"
  val OutOfRange = "value out of range"

  sealed trait Parsed
  /** A valid image; its pixels were written into the caller's buffer. */
  final case class Image(label: Int, seq: Long, sentNs: Long) extends Parsed
  final case class Rejected(reason: String, seq: Long) extends Parsed
  final case class Trailer(sent: Long) extends Parsed
  case object EndOfStream extends Parsed

  private val BigDL08Header = Array(0, 0, 0, 32, 0, 0, 0, 32)

  /**
   * Parse one line (without its newline). A valid image's pixels are written into `out` from `offset` as
   * CHW RGB floats in 0-255 (the layout BigDL's convolutions take), so no second pass is needed.
   */
  def parse(line: String, out: Array[Float], offset: Int): Parsed = {
    if (line.isEmpty) return EndOfStream
    if (line.length > MaxLine) return Rejected(TooLong, -1)
    var seq = -1L
    var sentNs = 0L
    var body = line
    if (line.charAt(0) == '~') {
      if (line.startsWith("~end:")) {
        val n = line.substring(5).trim
        if (n.nonEmpty && n.forall(_.isDigit)) return Trailer(n.toLong)
      }
      val c1 = line.indexOf(':')
      val c2 = if (c1 < 0) -1 else line.indexOf(':', c1 + 1)
      if (c1 < 2 || c2 < c1 + 2) return Rejected(BadHeader, -1)
      val s = line.substring(1, c1)
      val t = line.substring(c1 + 1, c2)
      if (!s.forall(_.isDigit) || !t.forall(_.isDigit) || s.length > 18 || t.length > 19) return Rejected(BadHeader, -1)
      seq = s.toLong
      sentNs = t.toLong
      body = line.substring(c2 + 1)
    }
    if (body.isEmpty || !body.charAt(0).isDigit) return Rejected(if (body.isEmpty) Empty else BadLabel, seq)
    val comma = body.indexOf(',')
    if (comma > 1 && comma <= 5 && body.substring(0, comma).contains('.')) parseBigDL08(body, comma, out, offset, seq, sentNs)
    else {
      val label = body.charAt(0) - '0'
      val start = if (comma == 1) 2 else 1
      val reason = parseValues(body, start, out, offset)
      if (reason == null) Image(label, seq, sentNs) else Rejected(reason, seq)
    }
  }

  private def parseBigDL08(body: String, comma: Int, out: Array[Float], offset: Int, seq: Long, sentNs: Long): Parsed = {
    val labelText = body.substring(0, comma)
    val label1 = try labelText.toFloat catch { case _: NumberFormatException => -1f }
    if (label1 < 1 || label1 > 10 || label1 != label1.floor) return Rejected(BadLabel, seq)
    val tokens = body.substring(comma + 1).split(",", -1)
    if (tokens.length != Pixels + BigDL08Header.length) return Rejected(WrongLength, seq)
    var j = 0
    while (j < tokens.length) {
      val v = try tokens(j).toInt catch { case _: NumberFormatException => return Rejected(NotNumeric, seq) }
      if (v < -128 || v > 127) return Rejected(OutOfRange, seq)
      if (j >= BigDL08Header.length) {
        val k = j - BigDL08Header.length // index in HWC BGR
        val rgb = 2 - k % 3
        out(offset + rgb * Plane + k / 3) = (v & 0xff).toFloat
      }
      j += 1
    }
    Image(label1.toInt - 1, seq, sentNs)
  }

  /**
   * The 3,072 values from `start`, separated by single spaces or commas, into `out` (CHW).
   * Integers must be 0-255; floats (a line with any '.') are taken as [0,1] and scaled by 255.
   * Returns null when valid, else the reason.
   */
  def parseValues(s: String, start: Int, out: Array[Float], offset: Int): String = {
    val n = s.length
    var i = start
    var k = 0
    var anyDot = false
    while (i < n) {
      val c0 = s.charAt(i)
      if (c0 == ' ' || c0 == ',') i += 1 // separators (runs and a trailing one are tolerated, as in wire.py)
      else {
        if (k >= Pixels) return WrongLength
        var neg = false
        if (c0 == '-') { neg = true; i += 1 }
        var mant = 0L
        var digits = 0
        var decimals = -1
        var going = true
        while (going && i < n) {
          val c = s.charAt(i)
          if (c >= '0' && c <= '9') {
            if (digits < 18) { mant = mant * 10 + (c - '0'); if (decimals >= 0) decimals += 1 }
            digits += 1
            i += 1
          } else if (c == '.' && decimals < 0) { decimals = 0; i += 1 }
          else if (c == ' ' || c == ',') going = false
          else return NotNumeric
        }
        if (digits == 0) return NotNumeric
        var v = mant.toDouble
        if (decimals > 0) v /= math.pow(10, decimals)
        if (neg) v = -v
        if (decimals >= 0) anyDot = true
        out(offset + (k % 3) * Plane + k / 3) = v.toFloat
        k += 1
      }
    }
    if (k == 0) return Empty
    if (k != Pixels) return WrongLength
    var j = 0
    if (anyDot) {
      while (j < Pixels) { out(offset + j) *= 255f; j += 1 }
    } else {
      while (j < Pixels) {
        val v = out(offset + j)
        if (v < 0 || v > 255) return OutOfRange
        j += 1
      }
    }
    null
  }

  // ------------------------------------------------------------------------------------------ encoding

  /** Formats the JVM sender writes. */
  val Formats: Seq[String] = Seq("comma", "v1", "v2", "bigdl08")

  /** One image (HWC RGB bytes, unsigned) as the body of a line in `format` (v2: the v1 body), no newline. */
  def encode(label: Int, hwc: Array[Byte], format: String): Array[Byte] = {
    val sb = new java.lang.StringBuilder(Pixels * 4 + 40)
    format match {
      case "comma" =>
        sb.append(label).append(',')
        appendValues(sb, hwc, ',')
      case "v1" | "v2" =>
        sb.append(label)
        appendValues(sb, hwc, ' ')
      case "bigdl08" =>
        sb.append((label + 1).toFloat.toString)
        BigDL08Header.foreach(h => sb.append(',').append(h))
        var p = 0
        while (p < Plane) { // BGR, signed bytes as Scala's Byte.toString writes them
          sb.append(',').append(hwc(p * 3 + 2).toInt)
          sb.append(',').append(hwc(p * 3 + 1).toInt)
          sb.append(',').append(hwc(p * 3).toInt)
          p += 1
        }
      case other => throw new IllegalArgumentException(s"unknown format $other; choose from ${Formats.mkString(", ")}")
    }
    sb.toString.getBytes(java.nio.charset.StandardCharsets.US_ASCII)
  }

  private def appendValues(sb: java.lang.StringBuilder, hwc: Array[Byte], sep: Char): Unit = {
    var j = 0
    while (j < Pixels) {
      if (j > 0) sb.append(sep)
      sb.append(hwc(j) & 0xff)
      j += 1
    }
  }

  def v2Header(seq: Long, sentNs: Long): Array[Byte] =
    s"~$seq:$sentNs:".getBytes(java.nio.charset.StandardCharsets.US_ASCII)

  def v2Trailer(sent: Long): Array[Byte] = s"~end:$sent\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII)
}
