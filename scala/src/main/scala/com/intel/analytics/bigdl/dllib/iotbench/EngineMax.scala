/*
 * The max path's classification under the BigDL engine this JVM runs (BigDLEngine), for an RDD of the Samples the
 * Python max path materialises once (BigDLClassifier.to_jvm).
 *
 * Why not BigDL's own predictClass: under -Dbigdl.engineType=mkldnn it runs BigDL's BLAS layers on MKL-DNN's
 * single-thread pools (slower than mklblas: 979 against 1,549 images/s for our CNN); the model has to be converted
 * for MKL-DNN inference first (BigDLEngine.forInference: IR graph -> DnnGraph), which only code inside
 * com.intel.analytics.bigdl may do.  Under mklblas the converted model is the model itself, so this path also runs
 * the default engine (the Python max path keeps BigDL's predictClass there, its figures' history).
 *
 * One converted model per executor JVM and broadcast: MKL-DNN computes on one JVM thread (Engine.dnnComputing)
 * with its own OpenMP threads over the executor's cores, so concurrent tasks take turns on it rather than each
 * converting a clone.  Classes come back 0-based, in the RDD's order.
 */
package com.intel.analytics.bigdl.dllib.iotbench

import com.intel.analytics.bigdl.dllib.models.utils.ModelBroadcast
import com.intel.analytics.bigdl.dllib.tensor.{Storage, Tensor}
import com.intel.analytics.bigdl.dllib.tensor.TensorNumericMath.TensorNumeric.NumericFloat
import com.intel.analytics.bigdl.dllib.utils.python.api.{Sample => PySample}
import iotbench.{Classify, LocalModels, Wire}
import org.apache.spark.api.java.JavaRDD

object EngineMax {
  private var current: (String, BigDLEngine.Model) = _
  /** Under mkldnn, every forward call gets the same input: this one array, `shape` images (the first call's batch;
   * shorter batches are padded, longer ones split).  A partial last batch made MKL-DNN re-create its primitives
   * for another shape, and a fresh small array per call is one the JVM may move; with both, a 10 s max run died
   * in libmkldnn (SIGSEGV reading a Java-heap address from an OpenMP thread).  One array of at least 16 MB is a
   * G1 humongous object, which G1 never moves. */
  private var input: Array[Float] = _
  private var shape = 0
  private val StableFloats = 4 * 1024 * 1024 + 1

  /** This JVM's model for inference under its engine, converted on first use of a broadcast (then reused). */
  def converted(model: ModelBroadcast[Float]): BigDLEngine.Model = synchronized {
    if (current == null || current._1 != model.uuid()) current = (model.uuid(), BigDLEngine.forInference(model.value()))
    current._2
  }

  /** `f` on this task's model under the JVM's engine: the one converted model under mkldnn (whose forward calls
   * `predict` serialises), else a pooled clone of its own (LocalModels). */
  def withModel[A](model: ModelBroadcast[Float])(f: BigDLEngine.Model => A): A =
    if (BigDLEngine.isDnn) f(converted(model)) else LocalModels.withModel(model)(f)

  /** 0-based classes of the first `n` images laid out in `buf` (N x 3 x 32 x 32), under the JVM's engine. */
  def predict(net: BigDLEngine.Model, buf: Array[Float], n: Int): Array[Int] =
    if (!BigDLEngine.isDnn) Classify.predict(net, buf, n)
    else synchronized {
      if (shape == 0) {
        shape = n
        input = new Array[Float](math.max(StableFloats, n * Wire.Pixels))
      }
      (0 until n by shape).toArray.flatMap { from =>
        val k = math.min(shape, n - from)
        System.arraycopy(buf, from * Wire.Pixels, input, 0, k * Wire.Pixels)
        val t = Tensor[Float](Storage[Float](input), 1, Array(shape, 3, Wire.Side, Wire.Side))
        // the output is the model's own buffer: read it before the next forward call
        Classify.argmaxRows(net.forward(t).toTensor[Float], k)
      }
    }

  /** The engine this JVM runs, as the summary records it. */
  def engine(): String = BigDLEngine.current

  /** 0-based classes of `samples` (one 3 x 32 x 32 feature each), `batch` images per forward call. */
  def classes(samples: JavaRDD[PySample], model: ModelBroadcast[Float], batch: Int): JavaRDD[Integer] =
    samples.rdd.mapPartitions { it =>
      val buf = new Array[Float](batch * Wire.Pixels)
      withModel(model) { net => it.grouped(batch).flatMap { group =>
        group.zipWithIndex.foreach { case (s, i) =>
          val f = s.features.get(0).storage
          if (f.length != Wire.Pixels)
            throw new IllegalArgumentException(s"a Sample of ${f.length} values, not ${Wire.Pixels} (3 x 32 x 32)")
          System.arraycopy(f, 0, buf, i * Wire.Pixels, Wire.Pixels)
        }
        predict(net, buf, group.length).map(Int.box)
      }.toArray.iterator }
    }.toJavaRDD()
}
