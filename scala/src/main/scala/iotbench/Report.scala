/*
 * What the JVM programs print: timestamps as the original's (`Instant.now`), latency percentiles, and a small
 * JSON writer for `--json FILE` (read by the Python benchmarks; no JSON library is on Spark's class path we
 * want to depend on).
 */
package iotbench

import java.nio.charset.StandardCharsets
import java.nio.file.{Files, Paths}
import java.time.Instant

object Report {
  def now: String = Instant.now.toString

  def epochMicros: Long = {
    val t = Instant.now
    t.getEpochSecond * 1000000L + t.getNano / 1000
  }

  /** Nearest-rank percentile of sorted values (microseconds) in milliseconds, or None when empty. */
  def percentileMs(sorted: Array[Long], q: Double): Option[Double] =
    if (sorted.isEmpty) None
    else {
      val idx = math.min(sorted.length - 1, math.max(0, math.ceil(q / 100.0 * sorted.length).toInt - 1))
      Some(sorted(idx) / 1000.0)
    }

  def ms(v: Option[Double]): String = v.map(x => f"$x%.1f").getOrElse("n/a")

  private def quote(s: String): String = {
    val sb = new StringBuilder("\"")
    s.foreach {
      case '"' => sb.append("\\\"")
      case '\\' => sb.append("\\\\")
      case c if c < ' ' => sb.append(f"\\u${c.toInt}%04x")
      case c => sb.append(c)
    }
    sb.append('"').toString
  }

  def json(value: Any): String = value match {
    case null | None => "null"
    case Some(v) => json(v)
    case s: String => quote(s)
    case b: Boolean => b.toString
    case d: Double => if (d.isNaN || d.isInfinite) "null" else d.toString
    case f: Float => json(f.toDouble)
    case n: Int => n.toString
    case n: Long => n.toString
    case m: Map[_, _] => m.map { case (k, v) => quote(k.toString) + ": " + json(v) }.mkString("{", ", ", "}")
    case s: Seq[_] => s.map(json).mkString("[", ", ", "]")
    case other => quote(other.toString)
  }

  def writeJson(path: String, fields: Seq[(String, Any)]): Unit =
    if (path.nonEmpty) {
      val text = fields.map { case (k, v) => "  " + quote(k) + ": " + json(v) }.mkString("{\n", ",\n", "\n}\n")
      Files.write(Paths.get(path), text.getBytes(StandardCharsets.UTF_8))
    }
}
