/*
 * EngineProbe: one BigDL model over the first N CIFAR-10 test images in this JVM, no Spark, under the engine
 * chosen by --bigdl-engine; prints one JSON line (engine, what the model became, images/s, accuracy) and can
 * write the predicted classes, so that two runs (one per engine: the engine is fixed per JVM) can be compared
 * image by image.  scripts/bigdl_engine_probe.py runs it under both engines on the same images.
 *
 *   java -cp <jar>:<bigdl jars> com.intel.analytics.bigdl.dllib.iotbench.EngineProbe --bigdl-engine mkldnn \
 *     -m models/bigdl_resnet20.model -f <cifar-10-batches-bin> [--weights W] [--unit] [--images N] [-b B] [--rounds R]
 *
 * --unit divides pixels by 255 (the Keras-API CNN takes 0-1 input; the ResNet20 twin normalises inside its graph).
 * The last batch is partial when N is not a multiple of B: that checks MKL-DNN with a batch size it was not set
 * up for (its primitives are created for the first input's shape).
 */
package com.intel.analytics.bigdl.dllib.iotbench

import java.nio.file.{Files, Paths}

import com.intel.analytics.bigdl.dllib.keras.Net
import com.intel.analytics.bigdl.dllib.tensor.{Storage, Tensor}
import com.intel.analytics.bigdl.dllib.tensor.TensorNumericMath.TensorNumeric.NumericFloat
import com.intel.analytics.bigdl.dllib.utils.Engine
import iotbench.{Cifar10Bin, Classify, Models, Report, Wire}

object EngineProbe {
  def main(args: Array[String]): Unit = {
    val a = args.sliding(2, 2).collect { case Array(k, v) => k -> v }.toMap ++
      args.filter(_ == "--unit").map(_ -> "true").toMap
    val engine = a.getOrElse("--bigdl-engine", "mklblas")
    BigDLEngine.select(engine).foreach { e => System.err.println(s"error: $e"); sys.exit(2) }
    System.setProperty("bigdl.localMode", "true")
    if (System.getProperty("bigdl.coreNumber") == null || engine == "mklblas")
      System.setProperty("bigdl.coreNumber", a.getOrElse("--cores", "2"))
    Engine.init
    val modelPath = a("-m")
    val loaded = a.get("--weights") match {
      // definition + weights: a Keras-API model (our CNN twin), which only Net.load reads
      case Some(w) => Net.load[Float](modelPath, w).asInstanceOf[BigDLEngine.Model]
      case None => Models.load(modelPath)
    }
    val t0 = System.nanoTime
    val model = BigDLEngine.forInference(loaded)
    val convertS = (System.nanoTime - t0) / 1e9
    val images = Cifar10Bin.load(Cifar10Bin.testFile(a("-f"))).take(a.getOrElse("--images", "2000").toInt)
    val batch = a.getOrElse("-b", "64").toInt
    val rounds = a.getOrElse("--rounds", "2").toInt
    val scale = if (a.contains("--unit")) 1f / 255f else 1f
    val inputs = images.grouped(batch).map { group =>
      val buf = new Array[Float](group.length * Wire.Pixels)
      group.zipWithIndex.foreach { case (img, i) =>
        var p = 0
        while (p < Wire.Plane) { // HWC bytes -> CHW floats
          var c = 0
          while (c < 3) {
            buf(i * Wire.Pixels + c * Wire.Plane + p) = (img.hwc(p * 3 + c) & 0xff) * scale
            c += 1
          }
          p += 1
        }
      }
      Tensor[Float](Storage[Float](buf), 1, Array(group.length, 3, Wire.Side, Wire.Side))
    }.toArray
    var predicted = Array.empty[Int]
    val times = (1 to rounds).map { _ =>
      val start = System.nanoTime
      predicted = inputs.flatMap(t => Classify.argmaxRows(BigDLEngine.forward(model, t).toTensor[Float], t.size(1)))
      (System.nanoTime - start) / 1e9
    }
    val correct = predicted.indices.count(i => predicted(i) == images(i).label)
    a.get("--predictions").foreach(p => Files.write(Paths.get(p), predicted.mkString("\n").getBytes("UTF-8")))
    println(Report.json(Map(
      "engine" -> BigDLEngine.current, "model" -> modelPath, "graph" -> BigDLEngine.describe(model),
      "images" -> images.length, "batch" -> batch, "convert_s" -> convertS, "round_s" -> times,
      "images_per_sec" -> images.length / times.last, "accuracy" -> correct.toDouble / images.length)))
  }
}
