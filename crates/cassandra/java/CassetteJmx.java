// cassette's long-lived JMX client: the snapshot and clear-snapshot calls of a backup without a
// JVM start each (nodetool is a new JVM per command, about a second before it does anything).
//
// Uses only the JDK (javax.management), no Cassandra jar: operations are invoked by name on
// Cassandra's StorageService MBean, with the signatures of Cassandra 5.0's StorageServiceMBean.
//
// Usage: java CassetteJmx HOST PORT
// It connects, prints "ready" (or "error<TAB>message" and exits), then answers one request per
// line on stdin with "ok" or "error<TAB>message" on stdout:
//   snapshot<TAB>TAG<TAB>ENTITY...       takeSnapshot(tag, {skipFlush=false}, entities):
//                                        entities are keyspaces, or keyspace.table
//   clearsnapshot<TAB>TAG<TAB>KEYSPACE... clearSnapshot({}, tag, keyspaces) (none: all)
// It exits when stdin closes. Fields never contain tabs or newlines (cassette checks).

import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

public final class CassetteJmx {
    private static final String STORAGE_SERVICE = "org.apache.cassandra.db:type=StorageService";
    private static final String[] SNAPSHOT_SIGNATURE = {"java.lang.String", "java.util.Map", "[Ljava.lang.String;"};
    private static final String[] CLEAR_SIGNATURE = {"java.util.Map", "java.lang.String", "[Ljava.lang.String;"};

    public static void main(String[] args) throws Exception {
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        String host = args[0].contains(":") ? "[" + args[0] + "]" : args[0];
        JMXConnector connector;
        MBeanServerConnection mbeans;
        ObjectName storageService;
        try {
            JMXServiceURL url = new JMXServiceURL("service:jmx:rmi:///jndi/rmi://" + host + ":" + args[1] + "/jmxrmi");
            connector = JMXConnectorFactory.connect(url, new HashMap<String, Object>());
            mbeans = connector.getMBeanServerConnection();
            storageService = new ObjectName(STORAGE_SERVICE);
            // Proves that this is a Cassandra node that answers, before "ready".
            mbeans.getAttribute(storageService, "ReleaseVersion");
        } catch (Exception e) {
            out.println("error\t" + describe(e));
            return;
        }
        out.println("ready");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] f = line.split("\t", -1);
            try {
                if (f[0].equals("snapshot") && f.length >= 3) {
                    Map<String, String> options = new HashMap<>();
                    options.put("skipFlush", "false");
                    Object[] params = {f[1], options, Arrays.copyOfRange(f, 2, f.length)};
                    mbeans.invoke(storageService, "takeSnapshot", params, SNAPSHOT_SIGNATURE);
                } else if (f[0].equals("clearsnapshot") && f.length >= 2) {
                    Object[] params = {new HashMap<String, Object>(), f[1], Arrays.copyOfRange(f, 2, f.length)};
                    mbeans.invoke(storageService, "clearSnapshot", params, CLEAR_SIGNATURE);
                } else {
                    out.println("error\tunknown request: " + f[0]);
                    continue;
                }
                out.println("ok");
            } catch (Exception e) {
                out.println("error\t" + describe(e));
            }
        }
        connector.close();
    }

    /** The exception and its causes on one line (JMX wraps the node's own exception). */
    private static String describe(Throwable e) {
        StringBuilder s = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (s.length() > 0) s.append(" | caused by ");
            s.append(t.getClass().getName());
            if (t.getMessage() != null) s.append(": ").append(t.getMessage());
        }
        return s.toString().replace('\n', ' ').replace('\t', ' ');
    }
}
