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
 * A parser never throws on bad input: it returns a Rejected with one of the reason strings of wire.py. Both parsers
 * judge each line on its own, with the same rules (a line with a decimal point or an exponent is a %f line, its values
 * kept as sent; without, a %d line of 0-255 pixels), and tests/wire_corpus/ holds them to the same verdicts.
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
  /** A valid image; its pixels were written into the caller's buffer. `raw`: 0-255 pixels (%d, bigdl08), else %f. */
  final case class Image(label: Int, seq: Long, sentNs: Long, raw: Boolean) extends Parsed
  final case class Rejected(reason: String, seq: Long) extends Parsed
  final case class Trailer(sent: Long) extends Parsed
  case object EndOfStream extends Parsed

  private val BigDL08Header = Array(0, 0, 0, 32, 0, 0, 0, 32)
  private val BigDL08HeaderText = BigDL08Header.mkString("", ",", ",")
  private val HeaderMax = 1 + 18 + 1 + 19 + 1 // "~" seq ":" ns ":"
  private final case class Header(seq: Long, sentNs: Long, body: Int)

  /** Whitespace as Python's str.split() knows it (ASCII); values are separated by runs of it or of commas. */
  def isWhitespace(c: Char): Boolean = c == ' ' || (c >= '\t' && c <= '\r' && c != '\n') || (c >= '\u001c' && c <= '\u001f')
  def isSeparator(c: Char): Boolean = c == ',' || isWhitespace(c)
  private def isDigit(c: Char): Boolean = c >= '0' && c <= '9'
  private def allDigits(s: String): Boolean = s.nonEmpty && s.forall(isDigit)

  /** `~seq:ns:` with 1-18 digits of seq and 1-19 of ns within a Long (as wire.py), else null. */
  private def header(line: String): Header = {
    val c1 = line.indexOf(':')
    val c2 = if (c1 < 0) -1 else line.indexOf(':', c1 + 1)
    if (c2 < 0) return null
    val s = line.substring(1, c1)
    val t = line.substring(c1 + 1, c2)
    if (!allDigits(s) || s.length > 18 || !allDigits(t) || t.length > 19) return null
    if (t.length == 19 && t.compareTo(Long.MaxValue.toString) > 0) return null
    Header(s.toLong, t.toLong, c2 + 1)
  }

  /**
   * Parse one line (without its newline), with the rules of iotbench/wire.py (see its docstring; the golden corpus
   * tests/wire_corpus/ holds both to the same verdicts). A valid image's values are written into `out` from
   * `offset` as CHW RGB floats, as sent: 0-255 for %d and bigdl08 lines (`raw`), model-ready values for %f lines.
   */
  def parse(line: String, out: Array[Float], offset: Int): Parsed = {
    if (line.isEmpty) return EndOfStream
    if (line.length > MaxLine) { // the header, when readable, is in the first bytes: keep its seq
      val h = if (line.charAt(0) == '~') header(line.substring(0, HeaderMax)) else null
      return Rejected(TooLong, if (h == null) -1 else h.seq)
    }
    var seq = -1L
    var sentNs = 0L
    var body = line
    if (line.charAt(0) == '~') {
      if (line.startsWith("~end:")) {
        val n = strip(line.substring(5))
        if (n.length <= 18 && allDigits(n)) return Trailer(n.toLong)
      }
      val h = header(line)
      if (h == null) return Rejected(BadHeader, -1)
      seq = h.seq
      sentNs = h.sentNs
      body = line.substring(h.body)
    }
    if (body.isEmpty) return Rejected(Empty, seq)
    if (!isDigit(body.charAt(0))) return Rejected(BadLabel, seq)
    val comma = body.indexOf(',')
    if (comma > 1 && comma <= 5 && body.substring(0, comma).contains('.')) parseBigDL08(body, comma, out, offset, seq, sentNs)
    else {
      val start = if (comma == 1) 2 else 1
      if (blank(body, start)) return Rejected(Empty, seq)
      val v = parseValues(body, start, out, offset)
      if (v.reason != null) return Rejected(v.reason, seq)
      if (!inRange(out, offset, if (v.raw) 0f else Float.NegativeInfinity, if (v.raw) 255f else Float.PositiveInfinity))
        return Rejected(OutOfRange, seq)
      Image(body.charAt(0) - '0', seq, sentNs, v.raw)
    }
  }

  private def strip(s: String): String = {
    var (a, b) = (0, s.length)
    while (a < b && isWhitespace(s.charAt(a))) a += 1
    while (b > a && isWhitespace(s.charAt(b - 1))) b -= 1
    s.substring(a, b)
  }

  private def blank(s: String, from: Int): Boolean = {
    var i = from
    while (i < s.length) { if (!isSeparator(s.charAt(i))) return false; i += 1 }
    true
  }

  /** Every value finite and within [lo, hi] (NaN is not). */
  private def inRange(out: Array[Float], offset: Int, lo: Float, hi: Float): Boolean = {
    var j = 0
    while (j < Pixels) {
      val v = out(offset + j)
      if (!(v >= lo && v <= hi) || v.isInfinite) return false
      j += 1
    }
    true
  }

  private def parseBigDL08(body: String, comma: Int, out: Array[Float], offset: Int, seq: Long, sentNs: Long): Parsed = {
    val labelText = body.substring(0, comma) // digits "." digits, an integer 1-10
    val dot = labelText.indexOf('.')
    val wellFormed = dot > 0 && labelText.indexOf('.', dot + 1) < 0 && labelText.forall(c => isDigit(c) || c == '.')
    val label1 = if (wellFormed) labelText.toDouble else -1.0
    if (label1 < 1 || label1 > 10 || label1 != label1.floor) return Rejected(BadLabel, seq)
    if (!body.startsWith(BigDL08HeaderText, comma + 1)) return Rejected(WrongLength, seq)
    val start = comma + 1 + BigDL08HeaderText.length
    if (blank(body, start)) return Rejected(Empty, seq)
    val v = parseValues(body, start, out, offset)
    if (v.reason != null) return Rejected(v.reason, seq)
    var p = 0
    while (p < Plane) { // signed BGR bytes -> unsigned RGB
      val b = out(offset + p)
      val r = out(offset + 2 * Plane + p)
      val g = out(offset + Plane + p)
      for (x <- Array(b, g, r)) if (!(x >= -128 && x <= 127) || x != x.floor) return Rejected(OutOfRange, seq)
      out(offset + p) = (r.toInt & 0xff).toFloat
      out(offset + Plane + p) = (g.toInt & 0xff).toFloat
      out(offset + 2 * Plane + p) = (b.toInt & 0xff).toFloat
      p += 1
    }
    Image(label1.toInt - 1, seq, sentNs, raw = true)
  }

  /** The verdict on a line's values: null reason when valid; `raw` when no value had a decimal point or exponent. */
  final case class Values(reason: String, raw: Boolean)

  /**
   * The values from `start`, separated by runs of whitespace or commas, into `out` (CHW, channel = index % 3),
   * each read as Python's float() reads it (ASCII): [+-], digits with single underscores between them, an optional
   * point, an optional exponent, or inf / infinity / nan. Reasons, first match: non-numeric characters, empty
   * payload, wrong number of values (ranges are the caller's: they depend on the format and the scale).
   */
  def parseValues(s: String, start: Int, out: Array[Float], offset: Int): Values = {
    val n = s.length
    var i = start
    var k = 0
    var raw = true
    var invalid = false
    while (i < n) {
      if (isSeparator(s.charAt(i))) i += 1
      else {
        var j = i
        while (j < n && !isSeparator(s.charAt(j))) j += 1
        val t = new Token(s, i, j)
        if (!t.valid) invalid = true
        else {
          if (t.float) raw = false
          if (k < Pixels) out(offset + (k % 3) * Plane + k / 3) = t.value.toFloat
        }
        k += 1
        i = j
      }
    }
    if (invalid) Values(NotNumeric, raw)
    else if (k == 0) Values(Empty, raw)
    else if (k != Pixels) Values(WrongLength, raw)
    else Values(null, raw)
  }

  private val Pow10 = Array.tabulate(23)(d => math.pow(10, d)) // exact up to 1e22

  /** One token s[a, b) by Python float()'s grammar; `value` exact (correctly rounded) when `valid`. */
  private final class Token(s: String, a: Int, b: Int) {
    var valid = false
    var float = false
    var value = 0.0
    private var underscores = false

    private var digits = 0 // of the last digit part

    /** End of a digit part (digits, single underscores between them) from `from`; its digit count in `digits`. */
    private def digitPart(from: Int): Int = {
      var i = from
      digits = 0
      while (i < b && (isDigit(s.charAt(i)) || (s.charAt(i) == '_' && digits > 0 && i + 1 < b && isDigit(s.charAt(i + 1))))) {
        if (s.charAt(i) == '_') underscores = true else digits += 1
        i += 1
      }
      i
    }

    {
      var i = a
      val neg = i < b && s.charAt(i) == '-'
      if (i < b && (s.charAt(i) == '-' || s.charAt(i) == '+')) i += 1
      val word = s.substring(i, b).toLowerCase
      if (word == "inf" || word == "infinity" || word == "nan") {
        valid = true
        value = if (word == "nan") Double.NaN else if (neg) Double.NegativeInfinity else Double.PositiveInfinity
      } else {
        var end = digitPart(i)
        val intDigits = digits
        var fracDigits = 0
        var ok = intDigits > 0
        if (end < b && s.charAt(end) == '.') {
          float = true
          end = digitPart(end + 1)
          fracDigits = digits
          ok = intDigits > 0 || fracDigits > 0
        }
        var exponent = false
        if (ok && end < b && (s.charAt(end) == 'e' || s.charAt(end) == 'E')) {
          float = true
          exponent = true
          var e = end + 1
          if (e < b && (s.charAt(e) == '+' || s.charAt(e) == '-')) e += 1
          end = digitPart(e)
          ok = digits > 0
        }
        valid = ok && end == b
        if (valid) {
          if (!exponent && !underscores && intDigits + fracDigits <= 15) {
            var mant = 0L
            var j = i
            while (j < b) { val c = s.charAt(j); if (isDigit(c)) mant = mant * 10 + (c - '0'); j += 1 }
            value = mant.toDouble / Pow10(fracDigits)
          } else value = java.lang.Double.parseDouble(s.substring(i, b).replace("_", ""))
          if (neg) value = -value
        }
      }
    }
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
