/*
 * The one accounting model of every receiver, ported from iotbench/metrics.py (close_books, Accounting.closes,
 * exit_status) so the Scala stream classifier's summary says what the Python and Spark receivers say:
 *   sent = classified + rejected + lost, duplicated and reordered beside it; rejected lines without a readable
 *   sequence number are first attributed to missing numbers, the rest are garbage_lines; a v1 stream (nothing
 *   sequenced, no sender count) has no loss figure (None, printed n/a); a stream without its end marker is
 *   truncated and reports sent_at_least = highest sequence number + 1.
 * Keep the two in step: tests/test_scala.py runs the same cases through both.
 */
package iotbench

final case class Accounting(
  sequenced: Boolean,
  sent: Option[Long],
  sentAtLeast: Option[Long],
  received: Long,
  classified: Long,
  rejected: Long,
  lost: Option[Long],
  duplicated: Option[Long],
  reordered: Option[Long],
  garbageLines: Long,
  truncated: Boolean
) {
  /** The identity holds (metrics.Accounting.closes). */
  def closes: Boolean = (sent, sentAtLeast, lost) match {
    case (Some(s), _, Some(l)) => s == classified + rejected + l
    case (None, Some(s), Some(l)) => s == classified + rejected + l
    case _ => received == classified + rejected + garbageLines + duplicated.getOrElse(0L)
  }
}

object Accounting {
  val ExitOk = 0 // the accounting closes and at least one image was classified
  val ExitTruncated = 3 // the stream ended without its end marker
  val ExitUnaccounted = 4 // sent != classified + rejected + lost
  val ExitNothingClassified = 5 // no image was classified

  /** metrics.close_books: `seen` distinct sequence numbers arrived, the largest `highest` (-1: none). */
  def closeBooks(sent: Option[Long], truncated: Boolean, received: Long, classified: Long, rejectedSequenced: Long,
                 rejectedUnsequenced: Long, seen: Long, highest: Long, duplicated: Long, reordered: Long,
                 garbageLines: Long = 0): Accounting = {
    if (seen == 0 && sent.isEmpty)
      return Accounting(sequenced = false, None, None, received, classified, rejectedUnsequenced, None, None, None,
        garbageLines, truncated)
    val expected = sent.getOrElse(highest + 1)
    val missing = math.max(expected - seen, 0L)
    val attributed = math.min(rejectedUnsequenced, missing)
    Accounting(sequenced = true, sent, if (sent.isDefined) None else Some(expected), received, classified,
      rejectedSequenced + attributed, Some(missing - attributed), Some(duplicated), Some(reordered),
      garbageLines + rejectedUnsequenced - attributed, truncated)
  }

  /** The books of a stream: `seqs` in arrival order with their kind (StreamCounts.Wrong/Right/Rejected). */
  def of(c: StreamCounts, truncated: Boolean): (Accounting, Long) = {
    val seen = scala.collection.mutable.HashSet.empty[Long]
    var (highest, duplicated, reordered) = (-1L, 0L, 0L)
    var (freshClassified, freshCorrect, sequencedClassified, sequencedCorrect) = (0L, 0L, 0L, 0L)
    var (rejectedSequenced, rejectedRepeats) = (0L, 0L)
    var i = 0
    while (i < c.seqs.length) {
      val (s, kind) = (c.seqs(i), c.seqKinds(i))
      val fresh = seen.add(s)
      if (kind != StreamCounts.Rejected) {
        sequencedClassified += 1
        if (kind == StreamCounts.Right) sequencedCorrect += 1
      }
      if (!fresh) {
        duplicated += 1
        if (kind == StreamCounts.Rejected) rejectedRepeats += 1
      } else {
        if (s < highest) reordered += 1
        highest = math.max(highest, s)
        if (kind == StreamCounts.Rejected) rejectedSequenced += 1
        else {
          freshClassified += 1
          if (kind == StreamCounts.Right) freshCorrect += 1
        }
      }
      i += 1
    }
    // unsequenced (v1) images are always "first time": nothing can say they repeat
    val classified = c.classified - sequencedClassified + freshClassified
    val correct = c.correct - sequencedCorrect + freshCorrect
    val books = closeBooks(if (c.sentTotal >= 0) Some(c.sentTotal) else None, truncated, c.lines, classified,
      rejectedSequenced, c.rejectedCount - rejectedSequenced - rejectedRepeats, seen.size.toLong, highest,
      duplicated, reordered)
    (books, correct)
  }

  /** metrics.exit_status: (status, one-line reason or None). */
  def exitStatus(a: Accounting): (Int, Option[String]) =
    if (a.truncated) {
      val more = a.sentAtLeast.map(n => s" (the sender sent at least $n images)").getOrElse("")
      (ExitTruncated, Some(s"the stream was cut before its end marker$more: partial report"))
    } else if (!a.closes)
      (ExitUnaccounted, Some("the accounting does not close: sent != classified + rejected + lost"))
    else if (a.classified == 0)
      (ExitNothingClassified, Some("nothing was classified: " +
        (if (a.rejected > 0) "every image was rejected" else "no image arrived")))
    else (ExitOk, None)
}
