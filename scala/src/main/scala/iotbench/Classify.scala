/*
 * Classification of a partition of text lines with a BigDL model, and the accounting that goes with it.
 *
 * Lines are parsed straight into a batch buffer in the model's input layout (N x 3 x 32 x 32 RGB floats 0-255;
 * the normalisation is the model's first layers) and classified `batch` images per forward call, keeping each
 * prediction next to its own label (BigDL's predictClass did not keep the order under Spark Streaming, which is
 * why the original's per-interval accuracy was only approximate).
 */
package iotbench

import scala.collection.mutable

import com.intel.analytics.bigdl.dllib.iotbench.EngineMax
import com.intel.analytics.bigdl.dllib.nn.abstractnn.{AbstractModule, Activity}
import com.intel.analytics.bigdl.dllib.tensor.{Storage, Tensor}
import com.intel.analytics.bigdl.dllib.tensor.TensorNumericMath.TensorNumeric.NumericFloat

/** What one interval (or one partition of it) saw; merged on the driver. */
final case class StreamCounts(
  lines: Long = 0,
  classified: Long = 0,
  correct: Long = 0,
  rejected: Map[String, Long] = Map.empty,
  samples: Vector[String] = Vector.empty, // first few rejected lines, truncated
  seqs: Array[Long] = Array.empty, // v2 sequence numbers seen (classified or rejected), in arrival order
  seqKinds: Array[Byte] = Array.empty, // of each of seqs: StreamCounts.Wrong, Right (classified) or Rejected
  latenciesUs: Array[Long] = Array.empty, // v2: classified time - send time
  firstUs: Long = Long.MaxValue, // first line received
  eofUs: Long = 0, // sender closed the connection
  eofLines: Long = -1, // lines the receiver read in all
  ended: Boolean = false, // an end marker (empty line) was seen
  sentTotal: Long = -1, // from a v2 trailer
  errors: Vector[String] = Vector.empty
) {
  def rejectedCount: Long = rejected.values.sum

  def merge(o: StreamCounts): StreamCounts = StreamCounts(
    lines + o.lines, classified + o.classified, correct + o.correct,
    (rejected.keySet ++ o.rejected.keySet).map(k => k -> (rejected.getOrElse(k, 0L) + o.rejected.getOrElse(k, 0L))).toMap,
    (samples ++ o.samples).take(Classify.MaxSamples), seqs ++ o.seqs, seqKinds ++ o.seqKinds,
    latenciesUs ++ o.latenciesUs,
    math.min(firstUs, o.firstUs), math.max(eofUs, o.eofUs), math.max(eofLines, o.eofLines), ended || o.ended,
    math.max(sentTotal, o.sentTotal), errors ++ o.errors)
}

object StreamCounts {
  val Wrong: Byte = 0
  val Right: Byte = 1
  val Rejected: Byte = 2
}

object Classify {
  type Model = AbstractModule[Activity, Activity, Float]
  val MaxSamples = 5
  /** The model takes 0-255 pixels; a %f line (model-ready values, scaled and maybe minus a mean) cannot be undone. */
  val FloatLine = "%f line (this receiver takes 0-255 pixels)"

  /** Index of the largest value of each of the first `n` rows of a 2-D output. */
  def argmaxRows(out: Tensor[Float], n: Int): Array[Int] = {
    val t = if (out.dim() == 1) out.view(1, out.nElement()) else out
    val arr = t.storage().array()
    val base = t.storageOffset() - 1
    val (rs, cs, classes) = (t.stride(1), t.stride(2), t.size(2))
    Array.tabulate(n) { i =>
      var best = 0
      var j = 1
      while (j < classes) {
        if (arr(base + i * rs + j * cs) > arr(base + i * rs + best * cs)) best = j
        j += 1
      }
      best
    }
  }

  /** Classify `n` images laid out in `buf` (N x 3 x 32 x 32); returns the predicted classes (0-based). */
  def predict(model: Model, buf: Array[Float], n: Int): Array[Int] = {
    val input = Tensor[Float](Storage[Float](buf), 1, Array(n, 3, Wire.Side, Wire.Side))
    argmaxRows(model.forward(input).toTensor[Float], n)
  }

  def stream(lines: Iterator[String], model: Model, batch: Int): StreamCounts = {
    val buf = new Array[Float](batch * Wire.Pixels)
    val labels = new Array[Int](batch)
    val sent = new Array[Long](batch)
    val seqAt = new Array[Int](batch) // index into seqs of each batched image with a sequence number, else -1
    var k = 0
    var (nLines, classified, correct) = (0L, 0L, 0L)
    val rejected = mutable.Map.empty[String, Long]
    val samples = mutable.ArrayBuffer.empty[String]
    val seqs = mutable.ArrayBuilder.make[Long]
    val kinds = mutable.ArrayBuffer.empty[Byte]
    val latencies = mutable.ArrayBuilder.make[Long]
    var (firstUs, eofUs, eofLines, ended, sentTotal) = (Long.MaxValue, 0L, -1L, false, -1L)
    val errors = mutable.ArrayBuffer.empty[String]

    def flush(): Unit = if (k > 0) {
      val predicted = EngineMax.predict(model, buf, k) // this JVM's engine (mkldnn: one converted model, in turns)
      val doneUs = Report.epochMicros
      var i = 0
      while (i < k) {
        if (predicted(i) == labels(i)) correct += 1
        if (seqAt(i) >= 0) kinds(seqAt(i)) = if (predicted(i) == labels(i)) StreamCounts.Right else StreamCounts.Wrong
        if (sent(i) > 0) latencies += doneUs - sent(i) / 1000
        i += 1
      }
      classified += k
      k = 0
    }

    def reject(reason: String, line: String, seq: Long): Unit = {
      rejected(reason) = rejected.getOrElse(reason, 0L) + 1
      if (samples.size < MaxSamples) samples += s"$reason: ${line.take(60)}"
      if (seq >= 0) { seqs += seq; kinds += StreamCounts.Rejected }
    }

    for (line <- lines) {
      if (line.startsWith("@")) { // markers from LineReceiver
        val f = line.split(" ")
        f(0) match {
          case "@first" => firstUs = math.min(firstUs, f(1).toLong)
          case "@eof" => eofUs = f(1).toLong; eofLines = f(2).toLong
          case _ => errors += line.drop(1)
        }
      } else {
        nLines += 1
        Wire.parse(line, buf, k * Wire.Pixels) match {
          case Wire.Image(label, seq, sentNs, raw) =>
            if (label < 0 || label > 9) reject(Wire.BadLabel, line, seq)
            else if (!raw) reject(FloatLine, line, seq) // %f values are another model's input, not 0-255 pixels
            else {
              labels(k) = label
              sent(k) = sentNs
              seqAt(k) = -1
              if (seq >= 0) { seqAt(k) = kinds.length; seqs += seq; kinds += StreamCounts.Wrong }
              k += 1
              if (k == batch) flush()
            }
          case Wire.Rejected(reason, seq) => reject(reason, line, seq)
          case Wire.Trailer(n) => sentTotal = n; nLines -= 1
          case Wire.EndOfStream => ended = true; nLines -= 1
        }
      }
    }
    flush()
    StreamCounts(nLines, classified, correct, rejected.toMap, samples.toVector, seqs.result(), kinds.toArray,
      latencies.result(),
      firstUs, eofUs, eofLines, ended, sentTotal, errors.toVector)
  }
}
