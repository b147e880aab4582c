/*
 * The JVM half of the Python BigDL stream (iotbench/engines/spark_stream.py, BigDLStream): an interval's text lines
 * are parsed, transformed and classified inside the executors' JVMs, so that no image becomes a Python object.
 *
 * Why: through Python every image crossed the worker as 11 KB of text, a numpy block and a pickled BigDL Sample,
 * which held that path to 750 images/s on 2 cores while BigDL itself classified the same model at twice that.
 * The parser is the Scala receiver's (Wire.parse, held to wire.py's verdicts by tests/wire_corpus/); the Python
 * side keeps the accounting, so what comes back per image is four numbers, packed little-endian:
 *
 *   label int32, predicted int32, seq int64 (-1: v1 line), send time ns int64 (0: v1 line)
 *
 * and per rejected line "reason TAB seq TAB first 60 characters", one per line of text (the characters only for the
 * first few of each partition: the accounting keeps five samples, and a flood of garbage should not come back as
 * 60 characters a line).
 */
package iotbench

import java.nio.{ByteBuffer, ByteOrder}

import com.intel.analytics.bigdl.dllib.iotbench.EngineMax
import com.intel.analytics.bigdl.dllib.models.utils.ModelBroadcast
import com.intel.analytics.bigdl.dllib.tensor.TensorNumericMath.TensorNumeric.NumericFloat
import org.apache.spark.api.java.{JavaRDD, JavaSparkContext}
import org.apache.spark.sql.{Dataset, Encoders, Row}

/** What a partition (or an interval, merged) gave: per-image records (see the file's comment), rejections, marks. */
final case class LineOutcome(images: Array[Byte], rejections: String, sentTotal: Long, ended: Boolean) {
  def merge(o: LineOutcome): LineOutcome = LineOutcome(images ++ o.images,
    if (rejections.isEmpty) o.rejections else if (o.rejections.isEmpty) rejections else rejections + "\n" + o.rejections,
    math.max(sentTotal, o.sentTotal), ended || o.ended)
}

object JvmLines {
  val RecordBytes = 24
  val SampleChars = 60
  val SampleLines = Classify.MaxSamples // rejected lines per partition that keep their text

  /** The model once per executor (pooled per concurrent task, see LocalModels), from the driver's copy. */
  def broadcast(jsc: JavaSparkContext, model: Classify.Model): ModelBroadcast[Float] =
    ModelBroadcast[Float]().broadcast(jsc.sc, model)

  /** Little-endian float32 bytes (what Python's ndarray.tobytes() gives) as floats. */
  def floats(bytes: Array[Byte]): Array[Float] = {
    val out = new Array[Float](bytes.length / 4)
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out)
    out
  }

  /**
   * Classify every line of `lines` with the broadcast model, `perCall` images per forward call in each task.
   * 0-255 pixels (%d, bigdl08 lines) become `pixel / divisor - mean` (mean: CHW floats, or empty), the model's input
   * transform in float32 as numpy computes it (iotbench.models.preprocess); %f values are model-ready and used as
   * sent, as the Python path does.
   */
  def classify(lines: JavaRDD[String], model: ModelBroadcast[Float], parallelism: Int, perCall: Int, divisor: Float,
               meanBytes: Array[Byte]): LineOutcome = {
    val mean = floats(meanBytes)
    val rdd = if (lines.getNumPartitions > parallelism) lines.rdd.coalesce(parallelism) else lines.rdd
    rdd.mapPartitions { it =>
      Iterator(EngineMax.withModel(model)(classifyPartition(it, _, perCall, divisor, mean)))
    }.collect().foldLeft(LineOutcome(Array.emptyByteArray, "", -1L, ended = false))(_ merge _)
  }

  /** [[classify]] over the first column of a DataFrame (Structured Streaming's socket source), read as text. */
  def classifyFrame(df: Dataset[Row], model: ModelBroadcast[Float], parallelism: Int, perCall: Int, divisor: Float,
                    meanBytes: Array[Byte]): LineOutcome =
    classify(df.select(df.col(df.columns(0)).cast("string")).as(Encoders.STRING).toJavaRDD, model, parallelism,
      perCall, divisor, meanBytes)

  def classifyPartition(lines: Iterator[String], model: Classify.Model, perCall: Int, divisor: Float,
                        mean: Array[Float]): LineOutcome = {
    val buf = new Array[Float](perCall * Wire.Pixels)
    val labels = new Array[Int](perCall)
    val seqs = new Array[Long](perCall)
    val sent = new Array[Long](perCall)
    val records = new java.io.ByteArrayOutputStream()
    val rejections = new java.lang.StringBuilder
    var (k, sentTotal, ended) = (0, -1L, false)

    def flush(): Unit = if (k > 0) {
      val predicted = EngineMax.predict(model, buf, k) // under mkldnn the JVM's one converted model takes turns
      val bb = ByteBuffer.allocate(k * RecordBytes).order(ByteOrder.LITTLE_ENDIAN)
      var i = 0
      while (i < k) {
        bb.putInt(labels(i)).putInt(predicted(i)).putLong(seqs(i)).putLong(sent(i))
        i += 1
      }
      records.write(bb.array(), 0, bb.position())
      k = 0
    }

    var rejectedLines = 0
    def reject(reason: String, seq: Long, line: String): Unit = {
      if (rejections.length > 0) rejections.append('\n')
      rejections.append(reason).append('\t').append(seq).append('\t')
      if (rejectedLines < SampleLines)
        rejections.append(line.take(SampleChars).map(c => if (c == '\n' || c == '\r') ' ' else c))
      rejectedLines += 1
    }

    for (line <- lines) Wire.parse(line, buf, k * Wire.Pixels) match {
      case Wire.Image(label, seq, sentNs, raw) =>
        if (label < 0 || label > 9) reject(Wire.BadLabel, seq, line)
        else {
          if (raw) normalise(buf, k * Wire.Pixels, divisor, mean)
          labels(k) = label
          seqs(k) = seq
          sent(k) = sentNs
          k += 1
          if (k == perCall) flush()
        }
      case Wire.Rejected(reason, seq) => reject(reason, seq, line)
      case Wire.Trailer(n) => sentTotal = math.max(sentTotal, n)
      case Wire.EndOfStream => ended = true
    }
    flush()
    LineOutcome(records.toByteArray, rejections.toString, sentTotal, ended)
  }

  /** One image's 0-255 pixels at `offset` to the model's input: `pixel / divisor - mean` (CHW). */
  private def normalise(buf: Array[Float], offset: Int, divisor: Float, mean: Array[Float]): Unit = {
    var j = 0
    if (mean.isEmpty) while (j < Wire.Pixels) { buf(offset + j) /= divisor; j += 1 }
    else while (j < Wire.Pixels) { buf(offset + j) = buf(offset + j) / divisor - mean(j); j += 1 }
  }
}
