/*
 * Loading a model file for the JVM classifiers, with a one-line error naming the file when it cannot be used.
 */
package iotbench

import java.nio.file.{Files, Paths}

import com.intel.analytics.bigdl.dllib.nn.Module
import com.intel.analytics.bigdl.dllib.tensor.TensorNumericMath.TensorNumeric.NumericFloat

object Models {
  /** What `Module.save` (Java serialization) wrote; `Module.load` is not public in BigDL 2.4. */
  private def javaDeserialize(path: String): Classify.Model = {
    val in = new java.io.ObjectInputStream(Files.newInputStream(Paths.get(path))) {
      override def resolveClass(desc: java.io.ObjectStreamClass): Class[_] =
        Class.forName(desc.getName, false, Thread.currentThread.getContextClassLoader)
    }
    try in.readObject().asInstanceOf[Classify.Model] finally in.close()
  }

  /** BigDL 2.x protobuf (`saveModule`/Python `saveModel`), Java-serialized (`Module.save`) or Torch `.t7`. */
  def load(path: String): Classify.Model = {
    if (!Files.isRegularFile(Paths.get(path))) throw new java.io.FileNotFoundException(s"model file not found: $path")
    if (path.endsWith(".t7")) return Module.loadTorch[Float](path)
    try Module.loadModule[Float](path)
    catch {
      case first: Throwable =>
        try javaDeserialize(path)
        catch {
          case second: Throwable =>
            val old = Option(second.getMessage).exists(_.contains("com.intel.analytics.bigdl.nn")) ||
              Option(first.getMessage).exists(_.contains("com.intel.analytics.bigdl.nn"))
            val why = if (old) "it is a BigDL 0.x file (classes com.intel.analytics.bigdl.nn.*, renamed ...dllib.nn.* in 2.x)"
            else s"${first.getClass.getSimpleName}: ${first.getMessage}; ${second.getClass.getSimpleName}: ${second.getMessage}"
            throw new IllegalArgumentException(s"cannot load model $path with BigDL 2.4: $why")
        }
    }
  }
}
