/*
 * DumpBigDL08: read a BigDL 0.x model file (Java-serialized `Module.save`, classes com.intel.analytics.bigdl.nn.*)
 * and write its tensors in module order: the parameters (weights, biases) then the extra parameters (BatchNorm
 * running mean and variance).  BigDL 2.4 cannot deserialize 0.x files (its classes moved to ...bigdl.dllib.*);
 * iotbench.ImportBigDL08 (in the main jar) reads this dump into the same architecture built with BigDL 2.4.
 *
 * Runs with Java 17 on BigDL 0.8's own jar (the PyPI wheel BigDL==0.8.0: bigdl/share/lib/*.jar), Scala 2.11's
 * library (Debian's scala-library 2.11.12) and Spark's jars of pyspark without its Scala 2.12 ones (only for
 * class resolution: no Spark runs).  See iotbench/commands/scala_build.py (`iotbench scala import-bigdl08`).
 *
 *   javac -cp <bigdl-0.8 jar> -d out DumpBigDL08.java
 *   java -cp out:<bigdl-0.8 jar>:<scala-library-2.11 jar>:<spark jars> DumpBigDL08 MODEL DUMP
 *
 * Dump format (big-endian): int count, then per tensor: int ndims, ndims ints (sizes), nElement floats.
 */
import java.io.*;

public class DumpBigDL08 {
  public static void main(String[] args) throws Exception {
    Object loaded;
    try (ObjectInputStream in = new ObjectInputStream(new BufferedInputStream(new FileInputStream(args[0])))) {
      loaded = in.readObject();
    }
    com.intel.analytics.bigdl.nn.abstractnn.AbstractModule<?, ?, ?> model =
        (com.intel.analytics.bigdl.nn.abstractnn.AbstractModule<?, ?, ?>) loaded;
    Object[] params = (Object[]) model.parameters()._1();
    Object[] extra = model.getExtraParameter();
    try (DataOutputStream out = new DataOutputStream(new BufferedOutputStream(new FileOutputStream(args[1])))) {
      out.writeInt(params.length + extra.length);
      for (Object[] group : new Object[][] {params, extra}) {
        for (Object o : group) {
          com.intel.analytics.bigdl.tensor.Tensor<?> t = ((com.intel.analytics.bigdl.tensor.Tensor<?>) o).contiguous();
          int[] size = t.size();
          out.writeInt(size.length);
          for (int s : size) out.writeInt(s);
          float[] data = (float[]) t.storage().array();
          int off = t.storageOffset() - 1;
          for (int i = 0; i < t.nElement(); i++) out.writeFloat(data[off + i]);
        }
      }
    }
    System.out.println("Dumped " + params.length + " parameter and " + extra.length + " extra tensors of "
        + model.getClass().getName() + " from " + args[0]);
  }
}
